"""Video sources: probing, frame sampling and crash-isolated decoding with PyAV."""
