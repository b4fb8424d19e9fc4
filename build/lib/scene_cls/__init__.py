__version__ = "0.0.1"

import warnings
# fastai's own import uses torch.jit.script, which torch now marks deprecated: noise in a user's terminal and notebooks.
# Here, because the package is imported before any of its modules (and so before fastai).
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
