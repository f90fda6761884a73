"""One module per view; each has `render(selection)`."""

from . import architecture, compare, complexity, latency, overview, predictions, shuffle

#: View name (as in the sidebar) -> module.
VIEW_MODULES = {
    "Overview": overview,
    "Architecture": architecture,
    "Complexity": complexity,
    "Channel shuffle": shuffle,
    "Compare": compare,
    "Predictions": predictions,
    "Latency": latency,
}
