"""One module per view; each has `render(selection)`."""

from . import accuracy, architecture, compare, complexity, inside, latency, overview, predictions, shuffle

#: View name (as in the sidebar) -> module.
VIEW_MODULES = {
    "Overview": overview,
    "Architecture": architecture,
    "Complexity": complexity,
    "Channel shuffle": shuffle,
    "Inside": inside,
    "Compare": compare,
    "Accuracy": accuracy,
    "Predictions": predictions,
    "Latency": latency,
}
