"""Tasks and their data: task facts, readers of the original formats, batching, synthetic benchmarks."""
