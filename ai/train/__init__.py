"""Training and evaluation entry points for radview's shipped models.

`python -m ai train lungs|classifier --data DIR` trains a model and writes its folder
(model.json, model.keras, MODEL_CARD.md, plots); `python -m ai evaluate --model NAME --data DIR`
re-measures a shipped model on its held-out test split and rewrites the card's metrics.

TensorFlow is imported only inside the functions that train or evaluate, never at import time.
"""
