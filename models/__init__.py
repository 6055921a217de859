"""Pure torch: tokenizer, persona language model, training loop, evaluation, ONNX export (no I/O)."""
