"""Sphinx configuration of mmrm's documentation (``make docs``; ``tests/test_docs.py``).

The pages are Markdown (myst-parser) beside ``index.rst`` and ``api.rst``; the API page is
autodoc of the registered components, imported for real from the repository (no mocks: the
test environment has the whole stack). Links from a page to a repository file outside
``docs/en`` (``configs/rm/README.md``, ``results/transfer/``, the front page) are kept as
links into the checkout, so that the same Markdown reads on GitHub and builds here without a
warning; ``tests/test_docs.py`` checks that each of them exists.
"""
import os.path as osp
import re
import sys

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, ROOT)

project = 'mmrm'
author = 'mmrm contributors'
copyright = '2026, mmrm contributors'  # noqa: A001  (Sphinx's name)
try:
    from mmrm.version import __version__ as release
except Exception:  # noqa: BLE001  (a docs build without the package still has a title)
    release = ''
version = release

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
]
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build', 'Thumbs.db', '.DS_Store']

# GitHub-style heading slugs (myst's default slug function), for links like `page.md#anchor`
myst_heading_anchors = 6
myst_enable_extensions = ['colon_fence']

autodoc_default_options = {'members': True, 'show-inheritance': True}
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = 'alabaster'
html_title = f'mmrm {release}'.strip()
html_static_path = []


def _repository_links(app, doctree):
    """A relative link to a repository path outside the docs source (a config README, a
    results folder, the front page) becomes a plain link into the checkout, from the page's
    HTML to that path (``docs/en/_build/html/...`` -> the repository root). Anything else is
    left to myst, which resolves (and warns about) links between the pages."""
    from docutils import nodes
    from sphinx import addnodes

    src_dir = app.srcdir
    doc = app.env.docname
    doc_dir = osp.dirname(osp.join(src_dir, doc))
    out_dir = osp.dirname(osp.join(app.outdir, doc))
    links = [n for n in doctree.findall(addnodes.pending_xref)]
    links += [n for n in doctree.findall(addnodes.download_reference)]
    for node in links:
        if node.get('reftype') != 'myst':
            continue
        target = node.get('reftarget', '')
        if node.get('refdomain') == 'doc':
            # myst names a Markdown file outside the source by its path without the suffix
            if target in app.env.found_docs:
                continue
            path, anchor = target + '.md', node.get('reftargetid')
            base = src_dir
        else:
            path, _, anchor = target.partition('#')
            base = doc_dir
        if not path or '://' in path:
            continue
        abspath = osp.normpath(osp.join(base, path))
        if osp.commonpath([abspath, str(src_dir)]) == str(src_dir):
            continue  # a page (or a file) of the docs: myst's business
        if not osp.exists(abspath):
            continue  # let myst warn: a broken link fails the build
        uri = osp.relpath(abspath, out_dir)
        if osp.isdir(abspath):
            uri += '/'
        if anchor:
            uri += '#' + anchor
        ref = nodes.reference('', '', internal=False, refuri=uri)
        ref.extend(node.children)
        node.replace_self(ref)


# ``gt_label``s: a docstring may glue a plural's "s" to an inline literal, which reads well as
# plain text (help(), the source) but is not reStructuredText. Autodoc gets an escaped space in
# between (rendered as nothing), so the docstrings stay as they are in the code.
_GLUED_LITERAL = re.compile(r'(``[^`\n]+``)(?=\w)')


def _unglue_literals(app, what, name, obj, options, lines):
    lines[:] = [_GLUED_LITERAL.sub(r'\1\\ ', line) for line in lines]


def setup(app):
    app.connect('doctree-read', _repository_links)
    app.connect('autodoc-process-docstring', _unglue_literals)
    return {'parallel_read_safe': True}
