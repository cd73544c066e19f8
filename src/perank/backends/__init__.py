"""How models are found, loaded and run, shared below the families: packaged-model resolution, the passage
encoder, plain causal LMs, the persistent embedding cache, and device/dtype handling."""
