"""The layering of the code base, checked on the source text (nothing is imported).

Floors, each importing only floors below it (and its own)::

    scripts/, benchmarks/   thin command lines
    webapp/                 the web page (scripts/app.py) over the inference pipeline
    training/               the engine: loop, evaluation passes, checkpoint, logger
    inference/              the pose-transfer pipeline on any photo (framing, detection, media I/O)
    options/                option sets
    models/                 models, networks, losses (may use data, metrics, util)
    data/                   datasets, loaders, the synthetic generator (util only)
    metrics/                one file per metric (util only)
    util/                   plain helpers: import nothing above

Every ``import`` statement of every project file is read with :mod:`ast`, at module level and inside functions
and classes. Three kinds are told apart: module-level imports (run when the module is imported), function-local
imports (run when the function is called) and imports under ``if TYPE_CHECKING:`` (never run; annotations only).
The rules:

* no import, of any kind, goes up a floor, except the annotation-only imports listed in
  ``TYPE_CHECKING_IMPORTS`` with their reason;
* a function-local import of a project module is allowed only where ``FUNCTION_LOCAL_IMPORTS`` lists it with
  its reason (a heavy optional dependency, usually), so that imports stay visible at the top of each file;
* the module-level imports among project modules have no cycle;
* every project import resolves to an existing project module (relative imports included), and no project file
  imports dynamically (``importlib.import_module``/``__import__``), which this test could not see.

The tests at the bottom run the checker on small fake trees, so the checker itself is shown to fail on a planted
upward import, cycle or unlisted local import.
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Top-level package -> the packages it may import (its own included). scripts/ and benchmarks/ share the top
# floor; data/ and metrics/ are side by side above util/ and do not import each other.
FLOORS: dict[str, frozenset[str]] = {
    'scripts': frozenset({'scripts', 'benchmarks', 'webapp', 'training', 'inference', 'options', 'models', 'data',
                          'metrics', 'util'}),
    'benchmarks': frozenset({'scripts', 'benchmarks', 'webapp', 'training', 'inference', 'options', 'models', 'data',
                             'metrics', 'util'}),
    'webapp': frozenset({'webapp', 'training', 'inference', 'options', 'models', 'data', 'metrics', 'util'}),
    'training': frozenset({'training', 'inference', 'options', 'models', 'data', 'metrics', 'util'}),
    'inference': frozenset({'inference', 'options', 'models', 'data', 'metrics', 'util'}),
    'options': frozenset({'options', 'models', 'data', 'metrics', 'util'}),
    'models': frozenset({'models', 'data', 'metrics', 'util'}),
    'data': frozenset({'data', 'util'}),
    'metrics': frozenset({'metrics', 'util'}),
    'util': frozenset({'util'}),
}
# Folders of command-line files: not packages; Python puts the running file's folder on sys.path, and the
# benchmarks put scripts/ there too, so a bare ``import demo`` there means scripts/demo.py.
SCRIPT_DIRS = ('scripts', 'benchmarks')

# (importer, imported) -> reason. Annotation-only imports that would go up a floor if they ran.
TYPE_CHECKING_IMPORTS: dict[tuple[str, str], str] = {
    (importer, 'options.base_options'): 'annotates `opt: Options`; models take the options object as handed to '
                                        'them and never import the options layer at run time'
    for importer in ('models', 'models.base_model', 'models.factory', 'models.flow_regression_model',
                     'models.pose_transfer_model')
}

# (importer, function, imported) -> reason. The only function-local imports of project modules.
FUNCTION_LOCAL_IMPORTS: dict[tuple[str, str, str], str] = {
    ('benchmarks.bench_data', 'worker_main', 'data'):
        'this file is also the worker that times another git revision\'s dataset code; a module-level import '
        'would load this checkout\'s packages into that worker',
    ('benchmarks.bench_data', 'worker_main', 'data.data_loader'):
        'this file is also the worker that times another git revision\'s dataset code; a module-level import '
        'would load this checkout\'s packages into that worker',
    ('benchmarks.bench_data', 'worker_main', 'data.base_dataset'):
        'the --maps_on_device helpers exist only in this checkout: imported where the worker of this checkout uses '
        'them, never in the worker of an older revision',
    ('benchmarks.bench_data', 'generate', 'data.synthetic'):
        'this file is also the worker that times another git revision\'s dataset code; a module-level import '
        'would load this checkout\'s packages into that worker',
    ('benchmarks.bench_data', 'main', 'util.io'):
        'this file is also the worker that times another git revision\'s dataset code; a module-level import '
        'would load this checkout\'s packages into that worker',
    ('data', '__getattr__', 'data.data_loader'):
        'lazy re-export of create_dataset/make_dataloader: `import data.synthetic` (the generator CLI) must not '
        'import torch',
    ('scripts.app', 'main', 'webapp.page'):
        'the page imports gradio (requirements-app.txt): without it `--help` still works and the error says what to '
        'install',
    ('data.synthetic', 'self_check', 'data.synthetic.check'):
        'the warp self-check needs torch; the generator (numpy/cv2 only) must not import it',
}


# ---------------------------------------------------------------------------------------------------- checker
@dataclass(frozen=True)
class Import:
    importer: str   # dotted module name of the importing file, e.g. 'models.networks.blocks'
    path: str       # file, relative to the root
    line: int
    imported: str   # dotted module name it resolves to ('' if it resolves to no project module)
    written: str    # the statement's target as written, e.g. '..loop' or 'training.loop'
    kind: str       # 'module', 'function' or 'type_checking'
    scope: str      # qualified name of the enclosing function ('' at module level)

    def where(self) -> str:
        return f'{self.path}:{self.line}'


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def project_files(root: Path) -> list[Path]:
    return sorted(p for pkg in FLOORS if (root / pkg).is_dir() for p in (root / pkg).rglob('*.py')
                  if '__pycache__' not in p.parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or (
        isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


class _ImportVisitor(ast.NodeVisitor):
    """Collects import statements with their kind and enclosing scope."""

    def __init__(self) -> None:
        self.found: list[tuple[ast.Import | ast.ImportFrom, str, str]] = []
        self.scope: list[str] = []
        self.functions = 0
        self.type_checking = 0

    def _kind(self) -> str:
        if self.type_checking:
            return 'type_checking'
        return 'function' if self.functions else 'module'

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append((node, self._kind(), '.'.join(self.scope) if self.functions else ''))

    visit_ImportFrom = visit_Import

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.scope.append(getattr(node, 'name', '<lambda>'))
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _visit_function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        # A class body runs at import time: its imports count as module level, but name the scope.
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_checking += 1
        for child in node.body:
            self.visit(child)
        self.type_checking -= 1
        for child in node.orelse:  # the else branch runs
            self.visit(child)


def collect_imports(root: Path) -> tuple[list[Import], list[str]]:
    """Every import of a project module in the project files under ``root``; and the problems found on the way
    (unresolvable project imports, dynamic imports)."""
    files = project_files(root)
    modules = {module_name(root, p): p for p in files}
    packages = {module_name(root, p) for p in files if p.name == '__init__.py'}
    script_modules = {d: {p.stem for p in (root / d).glob('*.py')} for d in SCRIPT_DIRS if (root / d).is_dir()}
    imports: list[Import] = []
    problems: list[str] = []

    def resolve_bare(importer_dir: str, dotted: str) -> str | None:
        """A name as written after ``import``/``from`` (absolute) -> project module, or None if not ours."""
        top = dotted.split('.')[0]
        if top in FLOORS and top not in SCRIPT_DIRS:
            return dotted
        if importer_dir in SCRIPT_DIRS:
            for d in (importer_dir, *SCRIPT_DIRS):
                if top in script_modules.get(d, ()):
                    return f'{d}.{dotted}'
        return None

    for path in files:
        rel = path.relative_to(root).as_posix()
        importer = module_name(root, path)
        top_dir = rel.split('/')[0]
        tree = ast.parse(path.read_text(encoding='utf-8'), filename=rel)
        for call in ast.walk(tree):
            if isinstance(call, ast.Call):
                name = ast.unparse(call.func)
                if name in ('__import__', 'importlib.import_module', 'import_module'):
                    problems.append(f'{rel}:{call.lineno}: dynamic import {ast.unparse(call)} (invisible to the '
                                    f'layering check; import statically)')
        visitor = _ImportVisitor()
        visitor.visit(tree)
        for node, kind, scope in visitor.found:
            targets: list[tuple[str, str]] = []  # (written, candidate module)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    resolved = resolve_bare(top_dir, alias.name)
                    if resolved is not None:
                        targets.append((alias.name, resolved))
            else:
                written = '.' * node.level + (node.module or '')
                if node.level:
                    package = importer if importer in packages else importer.rpartition('.')[0]
                    parts = package.split('.') if package else []
                    if node.level - 1 > len(parts) - 1 or top_dir in SCRIPT_DIRS:
                        problems.append(f'{rel}:{node.lineno}: relative import {written!r} goes beyond the '
                                        f'top-level package')
                        continue
                    base = '.'.join(parts[:len(parts) - (node.level - 1)])
                    module = f'{base}.{node.module}' if node.module else base
                else:
                    module = resolve_bare(top_dir, node.module)
                    if module is None:
                        continue
                # `from P import n` imports the submodule P.n when there is one, else the name n of P.
                for alias in node.names:
                    sub = f'{module}.{alias.name}'
                    targets.append((written, sub if sub in modules else module))
            for written, candidate in dict.fromkeys(targets):
                if candidate not in modules:
                    problems.append(f'{rel}:{node.lineno}: {written!r} resolves to {candidate!r}, which is no '
                                    f'project module')
                    candidate = ''
                imports.append(Import(importer, rel, node.lineno, candidate, written, kind, scope))
    return imports, problems


def floor_of(module: str) -> str:
    return module.split('.')[0]


def layering_violations(imports: list[Import], type_checking_allowed=TYPE_CHECKING_IMPORTS) -> list[str]:
    bad = []
    for imp in imports:
        if not imp.imported or floor_of(imp.imported) in FLOORS[floor_of(imp.importer)]:
            continue
        if imp.kind == 'type_checking' and (imp.importer, imp.imported) in type_checking_allowed:
            continue
        what = {'module': 'imports', 'function': 'imports inside a function', 'type_checking':
                'imports under TYPE_CHECKING (unlisted)'}[imp.kind]
        bad.append(f'{imp.where()}: {imp.importer} ({floor_of(imp.importer)}/) {what} {imp.imported} '
                   f'({floor_of(imp.imported)}/), a floor it may not use; allowed: '
                   f'{sorted(FLOORS[floor_of(imp.importer)])}')
    return bad


def unlisted_local_imports(imports: list[Import], allowed=FUNCTION_LOCAL_IMPORTS) -> list[str]:
    return [f'{imp.where()}: {imp.importer} imports {imp.imported} inside {imp.scope}() without a reason listed '
            f'in FUNCTION_LOCAL_IMPORTS (move it to the top of the file, or list it with its reason)'
            for imp in imports if imp.kind == 'function' and imp.imported
            and (imp.importer, imp.scope, imp.imported) not in allowed]


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components (size > 1, or a self-import) of the module-level import graph."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.kind == 'module' and imp.imported:
            graph.setdefault(imp.importer, set()).add(imp.imported)
            graph.setdefault(imp.imported, set())
    # Tarjan's algorithm, iterative (no recursion limit on long chains).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    cycles.append(sorted(component))
    return cycles


# ------------------------------------------------------------------------------------------ the project itself
@pytest.fixture(scope='module')
def project():
    return collect_imports(REPO)


def test_every_project_package_has_a_floor():
    packages = {p.parent.name for p in REPO.glob('*/__init__.py')} - {'tests'}
    assert packages <= set(FLOORS), f'packages without a floor in FLOORS: {sorted(packages - set(FLOORS))}'
    assert not list(REPO.glob('*.py')), 'Python files at the repository root belong in a package'
    assert len(project_files(REPO)) > 60  # the checker sees the code base (not an empty glob)


def test_imports_resolve_and_are_static(project):
    imports, problems = project
    assert not problems, '\n'.join(problems)
    assert len(imports) > 100
    # Relative imports are resolved, not skipped: the networks package uses them.
    relative = {(i.importer, i.written): i.imported for i in imports if i.written.startswith('.')}
    assert relative[('models.networks.flow_networks', '.blocks')] == 'models.networks.blocks'
    assert relative[('models.networks', '.init')] == 'models.networks.init'


def test_each_floor_imports_only_floors_below(project):
    imports, _ = project
    violations = layering_violations(imports)
    assert not violations, 'imports that go up a floor:\n' + '\n'.join(violations)


def test_type_checking_imports_are_listed_and_needed(project):
    imports, _ = project
    found = {(i.importer, i.imported) for i in imports if i.kind == 'type_checking'}
    stale = set(TYPE_CHECKING_IMPORTS) - found
    assert not stale, f'TYPE_CHECKING_IMPORTS lists imports that no longer exist: {sorted(stale)}'


def test_function_local_imports_are_listed(project):
    imports, _ = project
    unlisted = unlisted_local_imports(imports)
    assert not unlisted, '\n'.join(unlisted)
    found = {(i.importer, i.scope, i.imported) for i in imports if i.kind == 'function'}
    stale = set(FUNCTION_LOCAL_IMPORTS) - found
    assert not stale, f'FUNCTION_LOCAL_IMPORTS lists imports that no longer exist: {sorted(stale)}'


def test_no_import_cycles(project):
    imports, _ = project
    cycles = import_cycles(imports)
    assert not cycles, 'module-level import cycles:\n' + '\n'.join(' <-> '.join(c) for c in cycles)


def test_tests_do_not_import_conftest_modules():
    """Fixtures come from conftest files through pytest; helpers come from importable helper modules."""
    offenders = []
    for path in sorted((REPO / 'tests').rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ''] + [alias.name for alias in node.names]
            else:
                continue
            if any('conftest' in name.split('.') for name in names):
                offenders.append(f'{path.relative_to(REPO)}:{node.lineno}')
    assert not offenders, f'tests importing a conftest module: {offenders}'


# ---------------------------------------------------------------------------------------- the checker, on fakes
def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


CLEAN_TREE = {
    'util/__init__.py': '',
    'util/io.py': 'import json\n',
    'metrics/__init__.py': '',
    'metrics/ssim.py': 'from util.io import json\n',
    'training/__init__.py': '',
    'training/loop.py': 'from metrics.ssim import json\n\ndef train():\n    pass\n',
    'models/__init__.py': '',
    'models/networks/__init__.py': 'from .blocks import conv\n',
    'models/networks/blocks.py': 'from ..base import Base\n\ndef conv():\n    pass\n',
    'models/base.py': 'from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from training.loop import train\n'
                      'class Base:\n    pass\n',
    'scripts/train.py': 'import _path\nfrom training.loop import train\n',
    'scripts/_path.py': '',
}


def test_checker_accepts_a_clean_tree(tmp_path):
    imports, problems = collect_imports(write_tree(tmp_path, CLEAN_TREE))
    assert problems == []
    assert layering_violations(imports, type_checking_allowed={('models.base', 'training.loop'): 'annotations'}) == []
    assert import_cycles(imports) == [] and unlisted_local_imports(imports) == []
    by_written = {(i.importer, i.written): i for i in imports}
    # Relative imports resolve against the package; a bare script import resolves to the sibling script.
    assert by_written[('models.networks', '.blocks')].imported == 'models.networks.blocks'
    assert by_written[('models.networks.blocks', '..base')].imported == 'models.base'
    assert by_written[('scripts.train', '_path')].imported == 'scripts._path'
    assert by_written[('models.base', 'training.loop')].kind == 'type_checking'


def test_checker_reports_a_planted_upward_import(tmp_path):
    tree = {**CLEAN_TREE, 'util/io.py': 'import json\nfrom training.loop import train\n'}
    imports, problems = collect_imports(write_tree(tmp_path, tree))
    violations = layering_violations(imports, type_checking_allowed={('models.base', 'training.loop'): 'x'})
    assert problems == [] and len(violations) == 1
    assert violations[0].startswith('util/io.py:2: util.io (util/) imports training.loop (training/)')


def test_checker_reports_upward_imports_inside_functions_and_unlisted_type_checking(tmp_path):
    tree = {**CLEAN_TREE,
            'metrics/ssim.py': 'class SSIM:\n    def __call__(self):\n        from training import loop\n',
            'util/io.py': 'import typing\nif typing.TYPE_CHECKING:\n    from models.base import Base\nelse:\n'
                          '    import data\n',
            'data/__init__.py': ''}
    imports, problems = collect_imports(write_tree(tmp_path, tree))
    assert problems == []
    violations = layering_violations(imports)
    assert len(violations) == 4, violations
    assert any('metrics/ssim.py:3: metrics.ssim (metrics/) imports inside a function training.loop' in v
               for v in violations)
    assert any('util/io.py:3: util.io (util/) imports under TYPE_CHECKING (unlisted) models.base' in v
               for v in violations)
    assert any('util/io.py:5: util.io (util/) imports data' in v for v in violations)  # the else branch runs
    assert any('models/base.py:3' in v for v in violations)  # not allow-listed here
    unlisted = unlisted_local_imports(imports)
    assert unlisted == ['metrics/ssim.py:3: metrics.ssim imports training.loop inside SSIM.__call__() without a '
                        'reason listed in FUNCTION_LOCAL_IMPORTS (move it to the top of the file, or list it with '
                        'its reason)']
    assert unlisted_local_imports(imports, {('metrics.ssim', 'SSIM.__call__', 'training.loop'): 'why'}) == []


def test_checker_reports_cycles_but_not_function_local_back_edges(tmp_path):
    tree = {**CLEAN_TREE,
            'util/a.py': 'from util import b\n',
            'util/b.py': 'import util.c\n',
            'util/c.py': 'from util.a import x\n',
            'util/d.py': 'import util.d\n',
            'util/e.py': 'def f():\n    import util.io\n',
            'util/io.py': 'import json\nimport util.e\n'}
    imports, problems = collect_imports(write_tree(tmp_path, tree))
    assert problems == []
    assert import_cycles(imports) == [['util.a', 'util.b', 'util.c'], ['util.d']]


def test_checker_reports_unresolvable_and_dynamic_imports(tmp_path):
    tree = {**CLEAN_TREE,
            'util/io.py': 'import importlib\nfrom util.nothing import x\nfrom ... import y\n'
                          'm = importlib.import_module("training.loop")\n'}
    _, problems = collect_imports(write_tree(tmp_path, tree))
    assert len(problems) == 3, problems
    assert "util/io.py:2: 'util.nothing' resolves to 'util.nothing', which is no project module" in problems
    assert any(p.startswith("util/io.py:3: relative import '...' goes beyond") for p in problems)
    assert any(p.startswith('util/io.py:4: dynamic import') for p in problems)
