"""Voice backends, dataset building, fine-tuning, evaluation and the model registry (issue: voice models)."""
