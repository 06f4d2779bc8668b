"""Colour constants shared by the data pipeline and the models."""
import numpy as np

# ITU-R 601 luma weights (R, G, B), as PIL's convert('L'): a photo's grey.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
