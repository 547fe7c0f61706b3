"""Turning a trained PyTorch model into a verified ONNX file."""
