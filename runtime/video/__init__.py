"""Video object tracking: SAM 2's video predictor on exported graphs, with frames decoded on demand."""
