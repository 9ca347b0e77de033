"""How close a run came to a goal: the search's fitness.

Reaching a line is guided by its *approach level*: the branches that hold
the target, outermost first (an ``if``'s body, a loop's body, a handler);
a run that entered more of them is closer. Between runs as far in, a branch
distance: how far the test of the first branch not entered (an ``if`` or
``while`` header, from the locals the run had there) is from sending the
run in, and on the target how far ``value == want`` (or the condition of
``--when``) is from true, for numbers, strings and sequences. Smaller is
closer; 0 is met.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from neuraldbg.inverse.condition import Undecidable, evaluate, from_repr, parse_expression
from neuraldbg.inverse.goals import Goal, Observation


@dataclass(frozen=True)
class Level:
    header: int  # the compound statement's line
    branch: int  # the first line of the branch that holds the target
    test: ast.expr | None = field(default=None, compare=False)  # an if / while header's test
    positive: bool = True  # the branch is taken when the test is true (False: an else / elif)


def chain_to(tree: ast.AST, target: int) -> list[Level]:
    """The branches holding line ``target``, outermost first."""
    out: list[Level] = []
    body: list[ast.stmt] = list(getattr(tree, "body", []))
    while True:
        holder = next((s for s in body if s.lineno <= target <= (s.end_lineno or s.lineno)), None)
        if holder is None:
            return out
        blocks: list[list[ast.stmt]] = [getattr(holder, f, []) for f in ("body", "orelse", "finalbody")]
        blocks += [h.body for h in getattr(holder, "handlers", [])]
        inner = next((b for b in blocks if b and b[0].lineno <= target <= (b[-1].end_lineno or b[-1].lineno)), None)
        if inner is None or holder.lineno == target:
            return out
        if not isinstance(holder, (ast.FunctionDef, ast.AsyncFunctionDef)):
            test = holder.test if isinstance(holder, (ast.If, ast.While)) else None
            out.append(Level(holder.lineno, inner[0].lineno, test, inner is holder.body))
        body = inner


def approach(chain: list[Level], lines: frozenset[int]) -> int:
    """Branches of ``chain`` not entered (0: inside the innermost one)."""
    entered = 0
    for level in chain:
        if level.branch not in lines:
            break
        entered += 1
    return len(chain) - entered


def nearest(chain: list[Level], target: int, lines: frozenset[int]) -> int | None:
    """The line a run got to nearest the target: the target itself, else the
    deepest branch it entered, else the outermost header it ran."""
    if target in lines:
        return target
    deepest = None
    for level in chain:
        if level.header in lines:
            deepest = level.header
        if level.branch not in lines:
            break
        deepest = level.branch
    return deepest


def branch_distance(chain: list[Level], obs: Observation) -> float:
    """How far the run was from entering the first branch of ``chain`` it
    did not enter: its test's distance on the locals at the header (the
    nearest of the visits kept), 1e6 when that is unknown."""
    level = next((lv for lv in chain if lv.branch not in obs.lines), None)
    if level is None or level.test is None or level.header not in obs.lines:
        return 1e6
    test = level.test if level.positive else ast.UnaryOp(op=ast.Not(), operand=level.test)
    visits = [env for line, env in obs.watched if line == level.header]
    return min((condition_distance(test, env) for env in visits), default=1e6)


def value_distance(got: Any, want: Any) -> float:
    """How far ``got`` is from ``want`` (0: equal)."""
    if got == want and isinstance(got, bool) == isinstance(want, bool):
        return 0.0
    if isinstance(got, (int, float)) and isinstance(want, (int, float)) and not isinstance(got, bool):
        try:
            return min(1.0 + abs(float(got) - float(want)), 1e12)
        except OverflowError:
            return 1e12
    if isinstance(got, (str, list, tuple)) and type(got) is type(want):
        same = sum(1 for a, b in zip(got, want) if a == b)
        return 1.0 + abs(len(got) - len(want)) + (min(len(got), len(want)) - same)
    return 1e6


def condition_distance(node: ast.expr, env: dict[str, str]) -> float:
    """A branch distance for a condition: 0 when true, larger the further it is."""
    try:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = node.operand
            if isinstance(inner, ast.Compare) and len(inner.ops) == 1 and type(inner.ops[0]) in _NEGATED:
                flipped = ast.Compare(left=inner.left, ops=[_NEGATED[type(inner.ops[0])]()], comparators=inner.comparators)
                return condition_distance(flipped, env)
            if isinstance(inner, ast.BoolOp):  # De Morgan: not (a and b) is (not a) or (not b)
                op = ast.Or() if isinstance(inner.op, ast.And) else ast.And()
                return condition_distance(ast.BoolOp(op=op, values=[ast.UnaryOp(op=ast.Not(), operand=v)
                                                                     for v in inner.values]), env)
            if isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.Not):
                return condition_distance(inner.operand, env)
        if isinstance(node, ast.BoolOp):
            parts = [condition_distance(v, env) for v in node.values]
            return sum(parts) if isinstance(node.op, ast.And) else min(parts)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left = evaluate(ast.Expression(node.left), env)
            right = evaluate(ast.Expression(node.comparators[0]), env)
            op = node.ops[0]
            if isinstance(op, ast.Eq):
                return value_distance(left, right)
            if isinstance(left, (int, float)) and isinstance(right, (int, float)):
                gap = {ast.Lt: left - right + 1, ast.LtE: left - right, ast.Gt: right - left + 1,
                       ast.GtE: right - left}.get(type(op))
                if gap is not None:
                    return max(0.0, float(gap))
        return 0.0 if evaluate(ast.Expression(node), env) else 1.0
    except (Undecidable, OverflowError):
        return 1e6


@dataclass
class Guide:
    """Fitness of observations for one goal (smaller is closer; (0, 0, 0) met)."""

    goal: Goal
    chains: list[list[Level]]  # one per target line (returns / raises may have several)
    targets: list[int]

    @staticmethod
    def for_goal(goal: Goal, tree: ast.AST | None) -> "Guide":
        targets = [goal.line] if goal.line else _goal_statements(goal, tree)
        chains = [chain_to(tree, t) for t in targets] if tree is not None else [[] for _ in targets]
        return Guide(goal, chains, targets)

    def watch_lines(self) -> tuple[int, ...]:
        """The branch headers whose locals the runs should keep (for :func:`branch_distance`)."""
        return tuple(sorted({lv.header for chain in self.chains for lv in chain if lv.test is not None}))

    def fitness(self, obs: Observation) -> tuple[int, int, float]:
        if self.goal.met(obs):
            return (0, 0, 0.0)
        if not self.targets:
            return (1, 0, self._value_gap(obs))
        best: tuple[int, float] | None = None
        for chain, target in zip(self.chains, self.targets):
            level = approach(chain, obs.lines) + (0 if target in obs.lines else 1)
            if best is not None and level > best[0]:
                continue
            gap = self._value_gap(obs) if target in obs.lines else branch_distance(chain, obs)
            if best is None or (level, gap) < best:
                best = (level, gap)
        assert best is not None
        return (1, best[0], best[1])

    def _value_gap(self, obs: Observation) -> float:
        goal = self.goal
        if goal.kind == "returns" and obs.status == "returned" and obs.value is not None:
            try:
                return value_distance(from_repr(obs.value), goal.want)
            except Undecidable:
                return 1e6
        if goal.kind == "when" and obs.goal_locals:
            tree = parse_expression(goal.expr).body
            return min(condition_distance(tree, visit) for visit in obs.goal_locals)
        return 1e6

    def depth(self, obs: Observation) -> int:
        """The most branches around a target this run reached (-1: none):
        between runs equally close, the one that got deeper in the code."""
        return max((len(c) for c, t in zip(self.chains, self.targets) if t in obs.lines), default=-1)

    def closest(self, lines: Iterable[frozenset[int]]) -> int | None:
        """The line nearest a target that any of these runs reached."""
        best: tuple[int, int] | None = None
        for reached in lines:
            for chain, target in zip(self.chains, self.targets):
                line = nearest(chain, target, reached)
                if line is None:
                    continue
                key = (approach(chain, reached), abs(target - line))
                if best is None or key < (best[0], abs(target - best[1])):
                    best = (key[0], line)
        return None if best is None else best[1]


def _goal_statements(goal: Goal, tree: ast.AST | None) -> list[int]:
    """The lines a goal without a line aims at: the ``return`` statements, or
    the ``raise`` statements (those naming the class first)."""
    if tree is None:
        return []
    if goal.kind == "returns":
        returns = [n for n in ast.walk(tree) if isinstance(n, ast.Return)]
        # a return of another constant cannot give the value: aim at the others (all, if none is left)
        able = [n.lineno for n in returns if not _other_constant(n, goal.want)]
        return sorted(set(able or [n.lineno for n in returns]))
    raises = [n for n in ast.walk(tree) if isinstance(n, ast.Raise)]
    named = [n.lineno for n in raises if n.exc is not None and goal.expr in ast.unparse(n.exc)]
    return sorted(set(named or [n.lineno for n in raises]))


_NEGATED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}


def _other_constant(node: ast.Return, want: Any) -> bool:
    """The statement returns a constant that is not ``want``."""
    try:
        value = None if node.value is None else ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return not (value == want and isinstance(value, bool) == isinstance(want, bool))
