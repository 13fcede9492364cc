"""The documentation (``docs/en``, issue #33) builds and its links hold:

* Sphinx builds the pages (myst-parser, autodoc of the registered components) with warnings as
  errors, into a temporary folder, offline;
* every relative link and image of ``README.md``, ``docs/**/*.md`` and ``configs/**/README.md``
  names a file or folder that exists, and every ``#anchor`` names a heading of its target page
  (GitHub's heading slugs, which ``myst_heading_anchors`` makes myst's too);
* the README stays a front page (at most ~200 lines);
* ``make help`` lists every target from its ``##`` comment and ``.PHONY`` names only real ones.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils import REPO_ROOT

DOCS = REPO_ROOT / 'docs' / 'en'
#: the Markdown files whose links are checked
PAGES = sorted([REPO_ROOT / 'README.md', *(REPO_ROOT / 'docs').rglob('*.md'),
                *(REPO_ROOT / 'configs').rglob('README.md')])
PAGES = [p for p in PAGES if '_build' not in p.parts]

_FENCE = re.compile(r'^\s*(```|~~~)')
_CODE_SPAN = re.compile(r'(`+)(?:.+?)\1')
_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
_HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')


def _prose_lines(text):
    """The lines outside fenced code blocks, with inline code spans blanked."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, line


def github_slug(title: str) -> str:
    """GitHub's (and myst's default) anchor of a heading: its text without markup, lowercased,
    spaces to hyphens, anything but letters, digits, ``_`` and ``-`` dropped."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', title)  # a link reads as its text
    text = text.replace('`', '').replace('**', '').replace('*', '')
    return re.sub(r'[^\w\- ]', '', text.strip().lower().replace(' ', '-'))


def anchors(path: Path):
    """The anchors of a Markdown page: one per heading, repeated titles numbered as GitHub
    does (``x``, ``x-1``, ``x-2``)."""
    seen, result = {}, set()
    for _, line in _prose_lines(path.read_text(encoding='utf-8')):
        m = _HEADING.match(line)
        if not m:
            continue
        slug = github_slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f'{slug}-{n}')
    return result


def relative_links(path: Path):
    """``(line, target)`` of every link and image in the page's prose that is not a URL."""
    for number, line in _prose_lines(path.read_text(encoding='utf-8')):
        for m in _LINK.finditer(_CODE_SPAN.sub('', line)):
            target = m.group(1)
            if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # http:, https:, mailto:, ...
                continue
            yield number, target


def test_the_checked_pages_are_the_docs_and_the_readmes():
    names = {str(p.relative_to(REPO_ROOT)) for p in PAGES}
    assert {'README.md', 'docs/en/get_started.md', 'docs/en/results/tables.md',
            'docs/en/results/transfer.md', 'docs/en/results/ranking.md',
            'configs/rm/README.md', 'configs/downstream/README.md'} <= names


def test_slugs_as_github_makes_them():
    assert github_slug('`compile=True` (torch.compile)') == 'compiletrue-torchcompile'
    assert github_slug('The offline Tables 1 / 6: every regularizer, data-scarce '
                       'Fashion-MNIST') == ('the-offline-tables-1--6-every-regularizer-'
                                            'data-scarce-fashion-mnist')
    assert github_slug("Scratch's spread, looked at on val") == 'scratchs-spread-looked-at-on-val'


def test_every_relative_link_and_anchor_resolves():
    broken = []
    cache = {}
    for page in PAGES:
        for number, target in relative_links(page):
            where = f'{page.relative_to(REPO_ROOT)}:{number}: {target}'
            path, _, anchor = target.partition('#')
            if path.startswith('/'):
                broken.append(f'{where} (absolute path: write it relative to the page)')
                continue
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f'{where} (no such file)')
                continue
            if not anchor:
                continue
            if dest.suffix != '.md':
                broken.append(f'{where} (an anchor into a file that is not Markdown)')
                continue
            if dest not in cache:
                cache[dest] = anchors(dest)
            if anchor not in cache[dest]:
                broken.append(f'{where} (no heading with that anchor in {dest.name})')
    assert not broken, 'broken links:\n' + '\n'.join(broken)


def test_the_readme_is_a_front_page():
    lines = (REPO_ROOT / 'README.md').read_text(encoding='utf-8').splitlines()
    assert len(lines) <= 200, f'README.md has {len(lines)} lines; the rest belongs in docs/en'
    text = '\n'.join(lines)
    for command in ('make demo', 'make test'):
        assert command in text
    assert "custom_imports = dict(imports=['mmrm'], allow_failed_imports=False)" in text
    assert 'docs/en/results/ranking.md' in text and 'docs/en/results/tables.md' in text


@pytest.mark.timeout(300)
def test_the_docs_build_without_a_warning(tmp_path):
    for module in ('sphinx', 'myst_parser'):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f'{module} is missing: `make install` (or pip install -r '
                        'requirements/docs.txt) installs the docs tools')
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
    for proxy in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY'):
        env[proxy] = 'http://127.0.0.1:9'  # offline: any network access would fail loudly
    proc = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-b', 'html', '-q', '-d',
         str(tmp_path / 'doctrees'), str(DOCS), str(tmp_path / 'html')],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=280)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and 'WARNING' not in output, output
    html = tmp_path / 'html'
    for page in ('index', 'get_started', 'api', 'changelog', 'layout', 'results/tables',
                 'results/ranking', 'results/transfer', 'user_guides/configs'):
        assert (html / f'{page}.html').is_file(), page
    api = (html / 'api.html').read_text(encoding='utf-8')
    for name in ('RecursiveMixBatchAugment', 'RMDataPreprocessor', 'RMClassifier',
                 'RoIConsistencyHead', 'RMMix', 'ClippedCutout', 'CPUAmpOptimWrapper',
                 'ClassIoUMetric'):
        # autodoc gave the class its own entry (anchor ``mmrm.<module path>.<name>``)
        assert re.search(rf'id="mmrm\.[\w.]*\b{name}"', api), name
    # the Offline Tables 1 / 6 figure is copied in from docs/images/
    assert (html / '_images' / 'fashion_mnist_comparison.png').is_file()


def _make_targets():
    text = (REPO_ROOT / 'Makefile').read_text()
    targets = dict(re.findall(r'^([a-zA-Z][\w-]*):[^=\n]*?(?:##\s*(.*))?$', text, re.M))
    phony = re.search(r'^\.PHONY:(.*)$', text, re.M).group(1).split()
    return targets, phony


def test_phony_names_only_real_targets_and_help_lists_them():
    targets, phony = _make_targets()
    assert set(phony) <= set(targets), set(phony) - set(targets)
    assert {'help', 'demo', 'test', 'docs', 'install'} <= set(phony)
    if shutil.which('make') is None:
        pytest.skip('no make on this machine')
    out = subprocess.run(['make', '--no-print-directory', 'help'], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout
    for name, comment in targets.items():
        assert comment, f'target {name} has no ## comment for make help'
        assert re.search(rf'^\s*make {re.escape(name)}\s+{re.escape(comment)}$', out, re.M), name
