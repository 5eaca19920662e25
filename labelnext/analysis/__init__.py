"""The ActiveLearningAnalyzer, its pool state, its model run and the main job (``python AL_cycle.py``)."""
