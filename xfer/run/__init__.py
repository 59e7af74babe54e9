"""Running experiments: run directories, the context a method's loop uses, checkpoints, logs, evaluation."""
