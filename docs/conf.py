"""Sphinx configuration for the sklearn-mvn documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` after
``pip install ".[docs]"``. The build needs no network: there is no intersphinx;
references to scikit-learn, SciPy and NumPy objects and to scikit-learn's
glossary are turned into plain links by :func:`_external_reference` below.
The built site needs no network either: the maths is typeset in the browser
by a copy of MathJax that the ``sphinx-mathjax-offline`` package ships and
copies into ``_static/mathjax`` (see :func:`_offline_mathjax`).
"""

# Authors: sklearn-mvn developers
# License: BSD 3-Clause

import os
import sys
import warnings

import threadpoolctl
from docutils import nodes

# Document the package of this source tree, also without installing it.
sys.path.insert(0, os.path.abspath(".."))

import sklearn_mvn  # noqa: E402

# -- Project -----------------------------------------------------------------

project = "sklearn-mvn"
author = "sklearn-mvn developers"
copyright = "2026, sklearn-mvn developers"
release = sklearn_mvn.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # Ships MathJax 3 and copies it into the built site (_static/mathjax).
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"

autosummary_generate = True
# Members are listed by the class template (docs/_templates/autosummary).
autodoc_default_options = {}

# numpydoc lists methods through our autosummary class template.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- Gallery -----------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # The gallery is the plot_*.py scripts, all executed. Other scripts in
    # examples/ (the console quick start and other demos) are documented in
    # the README and left out of the gallery: neither rendered nor run.
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(^|/)(?!plot_)[^/]+\.py$",
    "doc_module": ("sklearn_mvn",),
    "backreferences_dir": os.path.join("generated", "backreferences"),
    "reference_url": {"sklearn_mvn": None},
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 0,
    "abort_on_example_error": True,
    "plot_gallery": "True",
}

# Matplotlib's non-GUI backend: examples end with plt.show().
os.environ.setdefault("MPLBACKEND", "agg")

# The examples' matrices are small (at most a few dozen features): threaded
# BLAS only adds synchronisation overhead there, several times the work on a
# busy machine. One BLAS thread keeps each example at a few seconds.
threadpoolctl.threadpool_limits(limits=1, user_api="blas")
warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="FigureCanvasAgg is non-interactive, and thus cannot be shown",
)

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-mvn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []
html_show_sourcelink = False

# -- References to other projects without network ------------------------------

_EXTERNAL = {
    "sklearn": "https://scikit-learn.org/stable/modules/generated/{page}.html#{target}",
    "scipy": "https://docs.scipy.org/doc/scipy/reference/generated/{page}.html#{target}",
    "numpy": "https://numpy.org/doc/stable/reference/generated/{page}.html#{target}",
}
_SKLEARN_GLOSSARY = "https://scikit-learn.org/stable/glossary.html#term-{term}"
# Labels of scikit-learn's user guide used by docstrings we inherit from it.
_SKLEARN_SET_OUTPUT = (
    "https://scikit-learn.org/stable/auto_examples/miscellaneous/plot_set_output.html"
)
_SKLEARN_LABELS = {
    "metadata_routing": "https://scikit-learn.org/stable/metadata_routing.html",
    # set_output (GaussianImputer): its user-guide label and its example.
    "df_output_transform": _SKLEARN_SET_OUTPUT,
    "sphx_glr_auto_examples_miscellaneous_plot_set_output.py": _SKLEARN_SET_OUTPUT,
}


def _page_of(target):
    """Page of an object in the generated API docs: up to its class, if any."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part[:1].isupper():
            return ".".join(parts[: i + 1])
    return target


def _external_reference(app, env, node, contnode):
    """Link ``sklearn.*``/``scipy.*``/``numpy.*`` objects, glossary terms and labels.

    A hand-written stand-in for intersphinx (which would download inventories):
    it resolves references that are not found in this project into links to
    the other projects' generated API pages and scikit-learn's glossary.
    """
    domain = node.get("refdomain")
    target = node.get("reftarget", "")
    if domain == "py":
        root = target.split(".", 1)[0]
        if root not in _EXTERNAL:
            return None
        uri = _EXTERNAL[root].format(page=_page_of(target), target=target)
    elif domain == "std" and node.get("reftype") == "term":
        uri = _SKLEARN_GLOSSARY.format(term=target.lower().replace(" ", "-"))
    elif domain == "std" and target in _SKLEARN_LABELS:
        uri = _SKLEARN_LABELS[target]
    else:
        return None
    reference = nodes.reference("", "", internal=False, refuri=uri)
    reference.append(contnode)
    return reference


# -- Maths without network ------------------------------------------------------

# MathJax's SVG output draws every glyph as a path: unlike its CHTML output it
# loads no web fonts, which browsers refuse to load from file:// pages.
_MATHJAX_PATH = "mathjax/tex-svg.js"


def _offline_mathjax(app, config):
    """Point ``mathjax_path`` at the local copy, never at a CDN.

    ``sphinx-mathjax-offline`` copies MathJax into ``_static/mathjax`` and sets
    ``mathjax_path`` to its CHTML component; we use the SVG component of the
    same copy. A remote path is refused, so a configuration change cannot
    silently bring the CDN back.
    """
    config.mathjax_path = _MATHJAX_PATH
    if "://" in config.mathjax_path:  # pragma: no cover
        raise ValueError("mathjax_path must be local: the docs must read offline")


def setup(app):
    app.connect("missing-reference", _external_reference)
    app.connect("config-inited", _offline_mathjax)
