"""Text models: fine-tune a persona (or the shared base), evaluate, gate, export, publish."""
