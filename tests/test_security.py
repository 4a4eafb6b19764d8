"""Security defaults, checked over the source of the package and the dashboard (static scans, no model loads):
`trust_remote_code` is never turned on, weights are read and written as safetensors only, SQL takes its values as
parameters. Each scan is also run on a small bad example, so a scan that finds nothing has been seen to find
something."""

from __future__ import annotations

import ast
import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "harness").rglob("*.py"), *(REPO / "dashboards").rglob("*.py")])


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(path: Path | str, node: ast.AST) -> str:
    name = path.relative_to(REPO) if isinstance(path, Path) else path
    return f"{name}:{node.lineno}"


def _scan(scanner, code: str) -> list[str]:
    return scanner("example.py", ast.parse(textwrap.dedent(code)))


def _all(scanner) -> list[str]:
    return [problem for path in SOURCES for problem in scanner(path, _parse(path))]


# --- trust_remote_code -------------------------------------------------------------------------------------------

def remote_code(path, tree: ast.Module) -> list[str]:
    """Every place that could turn trust_remote_code on: a keyword or dict key not set to the constant False, or a
    string such as lm-eval's `model_args="...,trust_remote_code=True"`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
            value = node.value
        elif isinstance(node, ast.Dict):
            value = next((v for k, v in zip(node.keys, node.values)
                          if isinstance(k, ast.Constant) and k.value == "trust_remote_code"), None)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.search(r"trust_remote_code\s*=\s*(True|1|yes)", node.value, re.IGNORECASE):
                found.append(f"{_where(path, node)}: a string turns trust_remote_code on")
            continue
        else:
            continue
        if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
            found.append(f"{_where(path, node)}: trust_remote_code={ast.unparse(value)}")
    return found


def test_trust_remote_code_is_never_turned_on():
    assert _all(remote_code) == []


def test_the_remote_code_scan_finds_each_way_of_turning_it_on():
    assert len(_scan(remote_code, """
        AutoModel.from_pretrained(p, trust_remote_code=True)
        AutoModel.from_pretrained(p, trust_remote_code=user_choice)
        kw = {"trust_remote_code": True}
        simple_evaluate(model_args="pretrained=x,trust_remote_code=True")
        AutoTokenizer.from_pretrained(p, trust_remote_code=False)
    """)) == 4


# --- weights: safetensors only -----------------------------------------------------------------------------------

PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
CHECKPOINTS = ("SFTConfig", "TrainingArguments", "GRPOConfig", "DPOConfig")


def _name(node: ast.AST) -> str:
    """`torch.load` -> "torch.load"; the dotted name of a call's function, as far as it is names."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _name(node.func) + "()"
    return "?"


def _functions(tree: ast.Module):
    """(function, call) for every call, with the innermost function around it (the module for top-level code)."""
    def visit(node, owner):
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else owner
            if isinstance(child, ast.Call):
                yield inner, child
            yield from visit(child, inner)

    yield from visit(tree, tree)


def _keywords(call: ast.Call, owner: ast.AST) -> dict[str, ast.AST]:
    """The call's keywords, including those of a `**kw` built in the same function as `kw = dict(...)` or
    `kw = {...}` and grown with `kw.update(...)`."""
    found = {k.arg: k.value for k in call.keywords if k.arg}
    spread = {k.value.id for k in call.keywords if k.arg is None and isinstance(k.value, ast.Name)}
    for node in ast.walk(owner):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in spread for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and _name(value.func) == "dict":
                found.update({k.arg: k.value for k in value.keywords if k.arg})
            if isinstance(value, ast.Dict):
                found.update({k.value: v for k, v in zip(value.keys, value.values) if isinstance(k, ast.Constant)})
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
                and isinstance(node.func.value, ast.Name) and node.func.value.id in spread):
            found.update({k.arg: k.value for k in node.keywords if k.arg})
    return found


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _checks_safetensors(owner: ast.AST) -> bool:
    """The function looks for a `.safetensors` file itself: the name in a call or a path join
    (`(d / "adapter_model.safetensors").is_file()`, `d.glob("*.safetensors")`), not merely in its docstring."""
    for node in ast.walk(owner):
        if isinstance(node, ast.Call | ast.BinOp):
            for part in ast.walk(node):
                if isinstance(part, ast.Constant) and str(part.value).endswith(".safetensors"):
                    return True
    return False


def weights(path, tree: ast.Module) -> list[str]:
    """Pickle modules and torch.load/torch.save are never used; a model's weights are loaded with
    use_safetensors=True (or from a GGUF file, or after the function checked the .safetensors file is there) and
    saved with safe_serialization=True (or checked for .safetensors after); training never writes checkpoints, which
    hold pickled optimizer and RNG state. Tokenizers are plain JSON and text files, and are exempt."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in PICKLE_MODULES:
                    found.append(f"{_where(path, node)}: imports {module}")
            if isinstance(node, ast.ImportFrom) and node.module == "torch" and \
                    {a.name for a in node.names} & {"load", "save"}:
                found.append(f"{_where(path, node)}: imports torch.load/torch.save")
    for owner, call in _functions(tree):
        name = _name(call.func)
        keywords = _keywords(call, owner)
        receiver = name.rsplit(".", 1)[0]
        tokenizer = re.search(r"tok|Tokenizer|Config|Processor", receiver) is not None
        if name in ("numpy.load", "np.load"):
            if "allow_pickle" in keywords:
                found.append(f"{_where(path, call)}: {name}(allow_pickle=...)")
        elif name in ("torch.load", "torch.save", "pd.read_pickle", "pandas.read_pickle") or \
                name.endswith(".to_pickle"):
            found.append(f"{_where(path, call)}: {name}")
        elif name.endswith(".from_pretrained") and not tokenizer:
            if not (_is_true(keywords.get("use_safetensors")) or "gguf_file" in keywords or _checks_safetensors(owner)):
                found.append(f"{_where(path, call)}: {name} without use_safetensors=True")
        elif name.endswith(".save_pretrained") and not tokenizer:
            if not (_is_true(keywords.get("safe_serialization")) or _checks_safetensors(owner)):
                found.append(f"{_where(path, call)}: {name} without safe_serialization=True")
        elif name.split(".")[-1] in CHECKPOINTS:
            value = keywords.get("save_strategy")
            if not (isinstance(value, ast.Constant) and value.value == "no"):
                found.append(f"{_where(path, call)}: {name} may write pickled checkpoints (set save_strategy='no')")
    return found


def test_weights_are_read_and_written_as_safetensors_only():
    assert _all(weights) == []


def test_the_weights_scan_finds_pickles():
    found = _scan(weights, """
        import pickle
        from torch import load
        import torch
        def f(p, model, tokenizer):
            torch.load(p)
            torch.save(model.state_dict(), p)
            AutoModelForCausalLM.from_pretrained(p)
            PeftModel.from_pretrained(model, p)
            model.save_pretrained(p)
            SFTConfig(output_dir=p)
            tokenizer.save_pretrained(p)                               # tokenizers are exempt
            AutoTokenizer.from_pretrained(p)
        def g(p, model):
            kw = dict(use_safetensors=True)
            AutoModelForCausalLM.from_pretrained(p, **kw)              # through **kw
            AutoModelForCausalLM.from_pretrained(p, gguf_file="m.gguf")
            model.save_pretrained(p, safe_serialization=True)
            SFTConfig(output_dir=p, save_strategy="no")
        def h(p, base):
            "Reads p/adapter_model.safetensors."
            PeftModel.from_pretrained(base, p)                         # a docstring is no check
        def i(p, base):
            if not (p / "adapter_model.safetensors").is_file():
                raise ValueError(p)
            return PeftModel.from_pretrained(base, p)
    """)
    assert [line.split(": ", 1)[1].split(" ")[0] for line in found] == [
        "imports", "imports", "torch.load", "torch.save", "AutoModelForCausalLM.from_pretrained",
        "PeftModel.from_pretrained", "model.save_pretrained", "SFTConfig", "PeftModel.from_pretrained"]


# --- SQL takes values as parameters ------------------------------------------------------------------------------

SQL_CALLS = ("execute", "executemany", "sql", "query", "text")
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|ALTER|CREATE|DROP|WHERE|FROM|VALUES|JOIN|ORDER BY)\b")
DATABASE_MODULES = {"duckdb", "sqlite3", "psycopg", "psycopg2", "sqlalchemy", "asyncpg"}


class Scope:
    """What a name can hold, from the assignments, loops and appends of its function and the module around it."""

    def __init__(self, module: ast.Module):
        self.module = module
        self.parents = {child: node for node in ast.walk(module) for child in ast.iter_child_nodes(node)}

    def ancestors(self, node: ast.AST) -> list[ast.AST]:
        out = []
        while node in self.parents:
            node = self.parents[node]
            out.append(node)
        return out

    def owners(self, node: ast.AST) -> list[ast.AST]:
        """The functions (and lambdas) around `node`, innermost first, then the module."""
        out = []
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.Module):
                out.append(node)
        return out

    def bindings(self, name: str, at: ast.AST) -> list[ast.AST] | None:
        """The expressions `name` may hold where `at` reads it (a loop variable's as `_Element`s), or None for a
        parameter or a name bound nowhere here (imported): unknown, so never fixed."""
        for owner in self.owners(at):
            args = owner.args if isinstance(owner, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) else None
            if args and name in {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                                  *filter(None, [args.vararg, args.kwarg])]}:
                return None
            found = self._bound_in(owner, name, at)
            if found:
                return found
        return None

    def _bound_in(self, owner: ast.AST, name: str, at: ast.AST) -> list[ast.AST]:
        """Bindings of `name` directly in `owner` (not in functions inside it). In a function, only those before
        `at` or in a loop around it count: a name reused for something else further down is not what `at` reads."""
        out: list[ast.AST] = []
        loops = {n for n in self.ancestors(at) if isinstance(n, ast.For | ast.While | ast.comprehension)}
        for node in ast.walk(owner):
            if node is owner or self.owners(node)[:1] != [owner]:
                continue
            if not isinstance(owner, ast.Module) and getattr(node, "lineno", 0) > getattr(at, "lineno", math.inf) \
                    and not loops & set(self.ancestors(node)):
                continue
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    out += _unpack(target, node.value, name)
            elif isinstance(node, ast.For | ast.comprehension):
                out += _unpack(node.target, _Element(node.iter), name)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("append", "extend") and isinstance(node.func.value, ast.Name) \
                    and node.func.value.id == name:
                out += [ast.List(elts=[node.args[0]], ctx=ast.Load()) if node.func.attr == "append" else node.args[0]]
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                out.append(node.value)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
                out.append(node)
        return out


@dataclass(frozen=True, eq=False)
class _Element:
    """An element of the iterable `of` (what a loop variable takes)."""

    of: object


def _unpack(target: ast.AST, value: ast.AST, name: str) -> list[ast.AST]:
    """What `name` takes when `value` is assigned to `target` (`a, b = x, y` gives b -> y)."""
    if isinstance(target, ast.Name):
        return [value] if target.id == name else []
    if isinstance(target, ast.Tuple | ast.List):
        out = []
        for i, part in enumerate(target.elts):
            out += [v for item in _items(value) for v in _unpack(part, _index(item, i), name)]
        return out
    return []


def _items(value: ast.AST) -> list[ast.AST]:
    """The alternatives an expression may be: both branches of `a if c else b`."""
    if isinstance(value, ast.IfExp):
        return _items(value.body) + _items(value.orelse)
    return [value]


def _index(value: ast.AST, i: int) -> ast.AST:
    """Element i of a tuple; of anything else, an unknown part of it (checked as the whole)."""
    if isinstance(value, ast.Tuple | ast.List) and i < len(value.elts):
        return value.elts[i]
    if isinstance(value, _Element):
        return _Element(_IndexOf(value.of, i))
    return value


@dataclass(frozen=True, eq=False)
class _IndexOf:
    """Part `i` of every element of the iterable `of` (`for table, key in TABLES`: table is part 0)."""

    of: object
    i: int


def fixed(node: ast.AST, scope: Scope, at: ast.AST, seen: frozenset = frozenset()) -> bool:
    """True when `node` can only hold text written in the source: literals, and names bound only to such (a
    module-level tuple of column names, a loop over a literal tuple, a list grown by appending literals). A function
    parameter, an attribute or a call result may carry a value, so it is not fixed."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(fixed(v.value, scope, at, seen) for v in node.values if isinstance(v, ast.FormattedValue))
    if isinstance(node, ast.FormattedValue):
        return fixed(node.value, scope, at, seen)
    if isinstance(node, ast.BinOp):  # '?' * len(COLUMNS) is fixed: len() of anything is only a count
        return fixed(node.left, scope, at, seen) and fixed(node.right, scope, at, seen)
    if isinstance(node, ast.IfExp):
        return fixed(node.body, scope, at, seen) and fixed(node.orelse, scope, at, seen)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(fixed(e, scope, at, seen) for e in node.elts)
    if isinstance(node, ast.Starred):
        return fixed(node.value, scope, at, seen)
    if isinstance(node, ast.Dict):
        return all(fixed(v, scope, at, seen) for v in [*node.keys, *node.values] if v is not None)
    if isinstance(node, ast.GeneratorExp | ast.ListComp | ast.SetComp):
        return fixed(node.elt, scope, node.elt, seen)
    if isinstance(node, _Element):
        return _fixed_elements(node.of, scope, at, seen)
    if isinstance(node, _IndexOf):
        return _fixed_elements(node.of, scope, at, seen, node.i)
    if isinstance(node, ast.Subscript):
        return fixed(node.value, scope, at, seen)
    if isinstance(node, ast.Call) and _name(node.func).split(".")[-1] in ("Identifier", "Literal"):
        return True  # psycopg.sql quotes what it is given
    if isinstance(node, ast.Call) and _name(node.func).split(".")[-1] in ("text", "SQL"):
        return all(fixed(a, scope, at, seen) for a in node.args)  # sqlalchemy.text("..."), psycopg.sql.SQL("...")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("join", "format"):
        parts = [node.func.value, *node.args, *(k.value for k in node.keywords)]
        return all(fixed(p, scope, at, seen) for p in parts)
    if isinstance(node, ast.Call) and _name(node.func) in ("len", "range", "sorted", "tuple", "list", "str"):
        return _name(node.func) in ("len", "range") or all(fixed(a, scope, at, seen) for a in node.args)
    if isinstance(node, ast.Name):
        if (node.id, id(at)) in seen:
            return True  # a cycle (`x += ...` reading x): decided by its other bindings
        bound = scope.bindings(node.id, node if node in scope.parents else at)  # looked up where it is written
        if not bound:
            return False
        return all(fixed(b, scope, _origin(b), seen | {(node.id, id(at))})
                   and not isinstance(b, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for b in bound)
    return False


def _origin(node: ast.AST) -> ast.AST:
    """The source node an expression stands for (a loop variable's iterable), where its names are looked up."""
    while isinstance(node, _Element | _IndexOf):
        node = node.of
    return node


def _fixed_elements(iterable: ast.AST, scope: Scope, at: ast.AST, seen: frozenset, index: int | None = None) -> bool:
    """Every element (or element `index` of every element) of a loop's iterable is fixed."""
    for option in _items(iterable):
        if isinstance(option, ast.Tuple | ast.List | ast.Set):
            parts = [_index(e, index) if index is not None else e for e in option.elts]
            if not all(fixed(p, scope, at, seen) for p in parts):
                return False
        elif isinstance(option, ast.Name):
            bound = scope.bindings(option.id, option if option in scope.parents else at)
            if not bound or not all(_fixed_elements(b, scope, _origin(b), seen, index) for b in bound):
                return False
        elif isinstance(option, ast.Constant) and isinstance(option.value, str):
            continue  # the characters of a literal
        elif not (index is None and fixed(option, scope, at, seen)):
            return False
    return True


def _sql_text(node: ast.AST) -> str:
    return " ".join(v.value for v in ast.walk(node) if isinstance(v, ast.Constant) and isinstance(v.value, str))


def sql(path, tree: ast.Module) -> list[str]:
    """SQL is built from text written in the source only: every f-string, `%` or `.format` that builds SQL (it
    holds an SQL keyword) interpolates only fixed identifiers, and every `execute`/`sql`/`query` call's statement is
    a literal, a name bound to fixed SQL, or passed in (checked where it is built). Values go in as parameters."""
    scope = Scope(tree)
    found = []
    for node in ast.walk(tree):
        built = (isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values)
                 or isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add)
                 or isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format")
        if built and SQL_WORDS.search(_sql_text(node)) and not fixed(node, scope, node):
            found.append(f"{_where(path, node)}: SQL built from a value: {ast.unparse(node)[:100]}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS \
                and node.args:
            statement = node.args[0]
            passed_in = isinstance(statement, ast.Name) and scope.bindings(statement.id, node) is None
            if not (passed_in or fixed(statement, scope, node) or _from_loop_over_passed_in(statement, scope, node)):
                found.append(f"{_where(path, node)}: .{node.func.attr}() of SQL that may hold a value: "
                             f"{ast.unparse(statement)[:100]}")
    return found


def _from_loop_over_passed_in(statement: ast.AST, scope: Scope, at: ast.AST) -> bool:
    """`for name, step in MIGRATIONS if given is None else given: conn.execute(step)`: statements passed in (or
    defined as functions) are checked where they are written."""
    if not isinstance(statement, ast.Name):
        return False
    bound = scope.bindings(statement.id, at) or []
    return bool(bound) and all(isinstance(b, _Element) for b in bound)


def _database_modules() -> list[Path]:
    """harness/store, the dashboard, and any other module that imports a database driver."""
    chosen = []
    for path in SOURCES:
        tree = _parse(path)
        imports = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imports |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        if "store" in path.parts or path.is_relative_to(REPO / "dashboards") or imports & DATABASE_MODULES:
            chosen.append(path)
    return chosen


def test_sql_takes_values_as_parameters():
    modules = _database_modules()
    assert REPO / "harness" / "store" / "database.py" in modules
    assert [problem for path in modules for problem in sql(path, _parse(path))] == []


@pytest.mark.parametrize("code", [
    'def f(c, trial_id):\n    c.execute(f"SELECT * FROM trials WHERE id = \'{trial_id}\'")',
    'def f(c, study):\n    c.execute("SELECT * FROM trials WHERE study = \'%s\'" % study)',
    'def f(c, study):\n    c.execute("DELETE FROM trials WHERE study = \'{}\'".format(study))',
    'def f(c, study):\n    c.execute("SELECT * FROM trials WHERE study = \'" + study + "\'")',
    'def f(c, study):\n    q = f"SELECT * FROM trials WHERE study = \'{study}\'"\n    c.execute(q)',
    'def f(c, r):\n    c.execute(f"DELETE FROM trials WHERE id = {r.id}")',
    'def f(c, table):\n    c.execute(f"DELETE FROM {table} WHERE id = ?", [1])',  # an identifier that is a value
    'def f(c, column, value):\n    conds = []\n    conds.append(f"{column} = ?")\n'
    '    c.execute(f"SELECT * FROM t WHERE {\' AND \'.join(conds)}", [value])',
    'def f(c, suite):\n    cond = f"WHERE suite = \'{suite}\'" if suite else ""\n'
    '    c.execute(f"SELECT * FROM adapter_events {cond}")',
])
def test_the_sql_scan_finds_a_value_in_sql(code):
    assert _scan(sql, code), code


def test_the_sql_scan_accepts_parameters_and_fixed_identifiers():
    assert _scan(sql, """
        COLUMNS = ("id", "study")
        INSERT = f"INSERT INTO trials ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        TABLES = (("metrics", "trial_id"), ("examples", "trial_id"))
        def f(c, trial_id, suite, rows, migrations=None):
            c.execute("SELECT * FROM trials WHERE id = ?", [trial_id])
            for table, key in TABLES:
                c.execute(f"DELETE FROM {table} WHERE {key} = ?", [trial_id])
            cond, args = ("", []) if suite is None else ("WHERE suite = ?", [suite])
            c.execute(f"SELECT * FROM adapter_events {cond} ORDER BY id", args)
            conds = []
            for column, value in (("trial_id", trial_id), ("suite", suite)):
                if value is not None:
                    conds.append(f"{column} = ?")
            where = f"WHERE {' AND '.join(conds)}" if conds else ""
            c.execute(f"SELECT * FROM adapter_events {where}", args)
            c.executemany(INSERT, rows)
            for name, step in MIGRATIONS if migrations is None else migrations:
                c.execute(step)
    """) == []
