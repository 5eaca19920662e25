"""The model side, one room per role.

``backbones``    Keras classifiers by data kind: backbones, ``build_model``, preprocessing, weights checks
``predict``      one inference pass (probabilities and embeddings) and the metrics from it
``trainer``      the one ``Trainer`` and the training entry points (base model, retraining)
``runs``         run folders: a model with its labeled set and metadata, saved and loaded as a unit
``fingerprint``  the one identity of a model, recorded by caches and resumable outputs
``cli``          the command line of ``python train.py``

TensorFlow is imported on first use (``backbones.load_keras``), never on import.
"""
