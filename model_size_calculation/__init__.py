"""Model complexity as the DCASE Task 1 challenge counts it (NeSsi): MACs, memory, weight size."""

from model_size_calculation.nessi import ModelSizeError, format_nessi_table, get_model_size

__all__ = ["get_model_size", "format_nessi_table", "ModelSizeError"]
