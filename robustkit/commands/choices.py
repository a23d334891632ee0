"""Names the command-line help lists, kept here so that building the help loads no torch.

``tests/test_cli_startup.py`` checks each against the registry it mirrors.
"""

FRESH_ARCHITECTURES = ("mnist-cnn", "madry-mnist", "fast-mnist", "wide-fast-mnist")
SKLEARN_KINDS = ("logreg", "svm", "tree", "knn")
ENSEMBLE_MODES = ("loss", "logits")
