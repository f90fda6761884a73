"""ShuffleNet Explorer: the Streamlit UI over the `shufflenet` library (UI only)."""
