"""k-anonymity with the least information lost: a lattice search, then local suppression.

Why home-made rather than `anjana`: anjana 1.2.3's k-anonymity is a Datafly-style greedy (it
generalises the quasi-identifier with the most distinct values, one step at a time, then
drops whole records under a budget). It has no information-loss measure, no attribute
weights (no analysis focus), no cell-level suppression (only whole records), prints to
stdout, looks values up with a linear scan per cell, and pins exact versions of numpy,
pandas and pycanon, which a web application cannot live with. Tried on the synthetic
population of the tests (k = 5, same ladders, its suppression limit at 25 % and 2 %): at 300
people it masks age, gender and diploma for everyone and drops 58 people (19 %); at 10,000
it masks age and gender for everyone and takes 6.4 s. This engine keeps all five
demographics at those sizes (tests/evaluation/test_anonymity_engine.py). pycanon stays, as
the independent check in the tests.

The method, for records, quasi-identifiers (QI), k and a suppression limit s:

1. Encode: each QI's value at each level of its ladder becomes an integer code per record
   (numpy arrays; the ladder is applied once per distinct value). Levels that split the
   records exactly as the level below are dropped; a ladder stops at its first level where
   every record has the same value (coarser levels would lose information for nothing). A
   column already constant is never generalised nor masked. None is a value of its own. A
   `fixed` column (what the release shows anyway, e.g. the forms present) has its raw level
   only: a stratum that every group lies within.
2. Nodes (full-domain generalisation, as in ARX): a node gives one level per QI. Its
   generalisation loss G is the weighted mean, over QIs, of the normalised certainty
   penalty of its cells (a cell whose level merges m of the column's d raw values loses
   (m - 1) / (d - 1); a masked cell loses 1). The weights are the analysis focus. G grows
   towards the top of the lattice; the "outliers" (records in groups smaller than k)
   shrink. A node is feasible when its outliers are at most s of the records and it masks
   no column kept `whole` for everyone (only the all-masked node may: the last resort).
3. Local suppression at a feasible node: the outliers' cells are masked (MASKED) until each
   is in a group of at least k (`_Search.suppress`); outliers still fewer than k with
   nothing left to mask are left out, the last resort. The total loss counts a masked cell
   as lost (1, as a cell of a fully masked column) and every cell of a person left out,
   plus, per column, the shift of its released shares (`SHIFT_COST`): local masking falls
   on rare values and biases shares, which generalisation does not; beyond 3 points a
   shift costs ten times more (`SHIFT_BEYOND`). Each round of local suppression prices the
   shift its masking would cause, and a last pass (`_Search.rebalance`) masks a few cells of
   the values left over-represented, whole groups at a time so that every group stays at
   least k, while that lowers the loss and within the suppression limit. (Counting every cell
   of a person with one masked cell as lost, as ARX counts a suppressed record, made the
   optimum mask age and diploma for everyone at 300 people.)
4. Search for the least total loss: the all-masked node first (safe by construction); two
   greedy paths from the top down, and two from the top of the nodes that mask no `whole`
   column (each step lowers the column that gives the least
   estimated loss, the estimate pricing outliers at the cost measured so far); a climb
   (one level up or down one column while the loss drops); then a best-first walk of the
   lattice in order of G from the raw data, stopping when G reaches the best total loss
   (no node left can do better: `exhaustive`) or after `node_budget` groupings in all. A
   node without outliers is not expanded (coarser nodes only lose more), as in Flash.
5. The report gives per QI the level and the share masked, each category's share true and
   released (at the chosen level, among known values, both over the people released), and
   apart the people left out.

Every released combination of QI values (MASKED and None being values of their own) is
then shared by at least k records. Cost: one grouping of n records is one numpy pass per
QI plus a bincount or sort; 10,000 records x 13 QIs take about a second on 2 cores
(benchmarks/bench_anonymity.py).
"""

from __future__ import annotations

import heapq
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from selfcheck.evaluation.anonymity.model import (
    MASKED,
    CategoryShift,
    ColumnReport,
    Columns,
    QuasiIdentifier,
    Release,
    UtilityReport,
)

Codes = npt.NDArray[np.int64]
DEFAULT_NODE_BUDGET = 800  # groupings of every record (the unit of work)
# Local masking falls on rare values, so it shifts the shares of what is released: a column
# whose released shares move by a total variation distance d costs SHIFT_COST * d per cell
# on top (shares moved by 10 points in all cost nearly as much as masking the column).
# Chosen so that, on the population of the tests, the least-loss node (checked by brute
# force over every node of the lattice at 300 people) keeps every demographic, and a focus weight
# of 5 keeps its columns within 2 points; at 5, a focus on age kept 7 bands 2.4 points off.
SHIFT_COST = 9.0
# Beyond a shift of 3 points in all, each point costs ten times more: a column whose shares
# are off by 10 points is worse than masked (a share shown wrong misleads; a masked column
# says so). Without it, under the "age and channel" focus, the rare situations (jobless,
# student) could all be masked, "retired" then reading 11 points too high.
SHIFT_TOLERATED = 0.03
SHIFT_BEYOND = 10 * SHIFT_COST
# Rebalancing stops when no released share exceeds the truth by more than this many
# sampling errors of that share: closer, each cell masked buys too little (the analysis
# focus's columns would lose many cells for a tenth of a point).
REBALANCED = 0.5
CANDIDATES = 4  # nodes of the greedy path where local suppression is tried
_KEY_LIMIT = 2**62
# The outliers of each node counted, remembered (one bit per record) up to this many bytes:
# the greedy paths, the climb and the lattice walk count the same nodes again (on the 1 M
# answer rows of bench_export: 871 groupings of 268 distinct nodes).
REMEMBERED_BYTES = 8 << 20


@dataclass
class _Column:
    """One active (non-constant) QI: its usable levels, codes and losses."""

    spec: QuasiIdentifier
    levels: list[int]  # ladder levels kept (index into the spec's ladder, 0 = raw)
    codes: list[Codes]  # per kept level: a code per record
    cards: list[int]  # per kept level: number of distinct codes
    values: list[list[Any]]  # per kept level: the value of each code
    cell_loss: list[npt.NDArray[np.float64]]  # per kept level: loss of each record's cell
    mean_loss: list[float]
    top_masks: bool  # the last kept level is "masked" (not a constant ladder level)

    @property
    def top(self) -> int:
        return len(self.levels) - 1


def _encode(values: Sequence[Any]) -> tuple[Codes, list[Any]]:
    """A code per value (first seen, first code) and the distinct values in code order."""
    index: dict[Any, int] = dict.fromkeys(values, 0)
    for code, value in enumerate(index):
        index[value] = code
    codes = np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))
    return codes, list(index)


def _prepare(spec: QuasiIdentifier, raw: Sequence[Any]) -> _Column | None:
    """The column's usable levels, or None when it is constant (never generalised)."""
    raw_codes, domain = _encode(raw)
    raw_card = len(domain)
    if raw_card <= 1:
        return None
    if spec.fixed:  # one level, never coarsened nor masked: a stratum
        return _Column(
            spec=spec,
            levels=[0],
            codes=[raw_codes],
            cards=[raw_card],
            values=[domain],
            cell_loss=[np.zeros(len(raw), dtype=np.float64)],
            mean_loss=[0.0],
            top_masks=False,
        )
    # The ladder is applied to each distinct value once, then spread by code.
    levels = [0]
    codes = [raw_codes]
    cards = [raw_card]
    values = [domain]
    losses = [np.zeros(len(raw), dtype=np.float64)]
    top_masks = True
    for level in range(1, len(spec.ladder) + 1):
        mapping, level_domain = _encode([spec.apply(level, v) for v in domain])
        if len(level_domain) == cards[-1]:
            continue  # same partition as the level below: nothing gained
        # A cell loses (raw values merged with its own - 1) / (raw values - 1).
        merged = np.bincount(mapping, minlength=len(level_domain)).astype(np.float64)
        level_codes = mapping[raw_codes]
        levels.append(level)
        codes.append(level_codes)
        cards.append(len(level_domain))
        values.append(level_domain)
        losses.append((merged[level_codes] - 1.0) / (raw_card - 1))
        if len(level_domain) == 1:
            top_masks = False  # a constant level: coarser levels would only lose
            break
    if top_masks:
        levels.append(len(spec.ladder) + 1)
        codes.append(np.zeros(len(raw), dtype=np.int64))
        cards.append(1)
        values.append([MASKED])
        losses.append(np.ones(len(raw), dtype=np.float64))
    return _Column(
        spec=spec,
        levels=levels,
        codes=codes,
        cards=cards,
        values=values,
        cell_loss=losses,
        mean_loss=[float(x.mean()) for x in losses],
        top_masks=top_masks,
    )


def _group_ids(parts: Sequence[tuple[Codes, int]], size: int) -> tuple[Codes, int]:
    """A group id per record for the combination of (codes, cardinality), and the id span."""
    key = np.zeros(size, dtype=np.int64)
    span = 1
    for codes, card in parts:
        if card <= 1:
            continue
        if span * card >= _KEY_LIMIT:
            _, inverse = np.unique(key, return_inverse=True)
            key = inverse.astype(np.int64)
            span = int(key.max()) + 1 if size else 1
        key = key * card + codes
        span *= card
    return key, span


def _group_sizes(key: Codes, span: int) -> Codes:
    """The size of each record's group (counting in an array when the ids are few)."""
    if span <= max(4 * key.size, 1 << 16):
        counts = np.bincount(key, minlength=span)
        sizes: Codes = counts[key]
        return sizes
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    sizes = counts[inverse]
    return sizes


def combination_sizes(columns: Sequence[tuple[Codes, int]], size: int) -> Codes:
    """The number of records sharing each record's combination of `columns` (each its codes
    and their cardinality: codes from 0 to cardinality - 1)."""
    return _group_sizes(*_group_ids(columns, size))


def combination_ids(columns: Sequence[tuple[Codes, int]], size: int) -> tuple[Codes, int]:
    """A code per record for its combination of `columns` (as `combination_sizes` takes
    them), from 0 to the number of distinct combinations (also given), equal exactly when
    the combinations are."""
    key, _span = _group_ids(columns, size)
    _, inverse = np.unique(key, return_inverse=True)
    codes: Codes = inverse.astype(np.int64).reshape(-1)
    return codes, int(codes.max()) + 1 if size else 0


def _outliers(grouped: tuple[Codes, int], k: int) -> npt.NDArray[np.bool_]:
    """Records in a group smaller than k."""
    small: npt.NDArray[np.bool_] = _group_sizes(*grouped) < k
    return small


@dataclass
class _Outcome:
    node: tuple[int, ...]
    loss: float
    masked: list[npt.NDArray[np.bool_]]  # per active column: cells masked locally
    left_out: npt.NDArray[np.bool_]


# A move of `rebalance`: a value, the group its people join (that cell masked), the people.
_Move = tuple[int, tuple[int, ...], list[int]]


class _Shares:
    """Each column's released counts as cells are masked, against its true counts: the
    shift of its shares (total variation distance, as `_Search.total_loss` prices it)."""

    def __init__(self, codes: list[Codes], cards: list[int]) -> None:
        self.codes = codes
        self.truth = [
            np.bincount(c, minlength=card).astype(np.float64)
            for c, card in zip(codes, cards, strict=True)
        ]
        self.share = [t / max(t.sum(), 1.0) for t in self.truth]
        self.kept = [t.copy() for t in self.truth]

    def _tvd(self, index: int, counts: npt.NDArray[np.float64]) -> float:
        total = counts.sum()
        if total <= 0:
            return 0.0
        return 0.5 * float(np.abs(counts / total - self.share[index]).sum())

    def shift(self, index: int) -> float:
        return self._tvd(index, self.kept[index])

    def shift_after(self, index: int, rows: Codes) -> float:
        counts = self.kept[index] - np.bincount(
            self.codes[index][rows], minlength=self.kept[index].size
        )
        return self._tvd(index, counts)

    def shift_without(self, index: int, code: int, cells: int = 1) -> float:
        """The shift once `cells` more cells of value `code` are masked."""
        counts = self.kept[index].copy()
        counts[code] -= cells
        return self._tvd(index, counts)

    def mask(self, index: int, rows: Codes) -> None:
        self.kept[index] -= np.bincount(self.codes[index][rows], minlength=self.kept[index].size)


class _Search:
    def __init__(
        self, columns: list[_Column], size: int, k: int, limit: float, keep_whole: bool = True
    ) -> None:
        self.columns = columns
        self.keep_whole = keep_whole
        self.size = size
        self.k = k
        self.total_weight = sum(c.spec.weight for c in columns if not c.spec.fixed) or 1.0
        self.best: _Outcome | None = None
        self.evaluated = 0
        self.tried: set[tuple[int, ...]] = set()
        self.limit = limit * size
        self.top = tuple(c.top for c in columns)
        self.spent: list[float] = []
        # Before any is measured: an outlier costs about two masked cells of mean weight.
        self.cost_per_outlier = 2.0 / max(len(columns), 1)
        # Node -> its outliers (`count`), packed one bit per record, up to REMEMBERED_BYTES.
        self.remembered: dict[tuple[int, ...], npt.NDArray[np.uint8]] = {}
        self.remembered_bytes = 0

    def generalisation_loss(self, node: tuple[int, ...]) -> float:
        return (
            sum(c.spec.weight * c.mean_loss[lv] for c, lv in zip(self.columns, node, strict=True))
            / self.total_weight
        )

    def key(self, node: tuple[int, ...]) -> tuple[Codes, int]:
        parts = [(c.codes[lv], c.cards[lv]) for c, lv in zip(self.columns, node, strict=True)]
        return _group_ids(parts, self.size)

    def suppress(self, node: tuple[int, ...], outliers: npt.NDArray[np.bool_]) -> _Outcome:
        """Mask outliers' cells until each is in a group of at least k, or is left out.

        Each round tries every column on the pending outliers. If masking some column
        brings some of them into groups of at least k, the column that rescues most per
        unit of cost is masked for those people only (whole groups, so each stays >= k).
        Otherwise the column that merges most groups per unit of cost is masked for every
        pending outlier, and the rounds go on. Outliers with nothing left to mask and still
        fewer than k together are left out.

        The cost of masking a column for some people is its weight times one cell each,
        plus the shift it gives that column's released shares (`SHIFT_COST`, as in
        `total_loss`): outliers are rare because of their rare values (men are fewer than
        women), so masking the column that makes them rare removes those values from the
        release and moves its shares. Pricing the shift makes the rounds mask instead a
        column that does not tell these people apart from the rest (masking it moves no
        share), and, once a column's shares have moved, prefer masking cells that move
        them back.
        """
        n_cols = len(self.columns)
        masked = [np.zeros(self.size, dtype=np.bool_) for _ in range(n_cols)]
        pending = np.flatnonzero(outliers)
        # Columns that can still be masked for the pending records.
        open_cols = [i for i in range(n_cols) if node[i] < self.columns[i].top]
        current = [self.columns[i].codes[node[i]][pending] for i in range(n_cols)]
        cards = [self.columns[i].cards[node[i]] + 1 for i in range(n_cols)]  # +1: masked code
        shares = _Shares(
            [self.columns[i].codes[node[i]] for i in range(n_cols)],
            [self.columns[i].cards[node[i]] for i in range(n_cols)],
        )
        while pending.size and open_cols:
            rescue: tuple[float, int, npt.NDArray[np.bool_]] | None = None
            merge: tuple[float, int] | None = None
            base = _group_sizes(*_group_ids(list(zip(current, cards, strict=True)), pending.size))
            groups = float((1.0 / base).sum())
            for i in open_cols:
                trial = list(current)
                trial[i] = np.full(pending.size, cards[i] - 1, dtype=np.int64)
                grouped = _group_ids(list(zip(trial, cards, strict=True)), pending.size)
                sizes = _group_sizes(*grouped)
                ok = sizes >= self.k
                weight = self.columns[i].spec.weight
                rescued = int(ok.sum())
                if rescued:
                    cost = weight * self._shift_factor(shares, i, pending[ok])
                    if rescue is None or rescued / cost > rescue[0]:
                        rescue = (rescued / cost, i, ok)
                # Groups merged per unit of cost; a column whose masking merges nothing
                # (it does not tell these people apart) is masked only when no other helps.
                cost = weight * self._shift_factor(shares, i, pending)
                merged = (groups - float((1.0 / sizes).sum())) / cost
                merged = merged if merged > 1e-9 else -1.0 / cost
                if merge is None or merged > merge[0]:
                    merge = (merged, i)
            if rescue is not None:
                _, i, ok = rescue
                masked[i][pending[ok]] = True
                shares.mask(i, pending[ok])
                keep = ~ok
            else:
                assert merge is not None
                _, i = merge
                open_cols.remove(i)
                masked[i][pending] = True
                shares.mask(i, pending)
                current[i] = np.full(pending.size, cards[i] - 1, dtype=np.int64)
                keep = _outliers(
                    _group_ids(list(zip(current, cards, strict=True)), pending.size), self.k
                )
            pending = pending[keep]
            current = [c[keep] for c in current]
        left_out = np.zeros(self.size, dtype=np.bool_)
        left_out[pending] = True
        self.rebalance(node, masked, left_out, shares)
        return _Outcome(node, self.total_loss(node, masked, left_out), masked, left_out)

    def rebalance(
        self,
        node: tuple[int, ...],
        masked: list[npt.NDArray[np.bool_]],
        left_out: npt.NDArray[np.bool_],
        shares: _Shares,
    ) -> None:
        """Mask a few more cells of the values that masking left over-represented, so that
        the released shares come back towards the truth.

        Local suppression masks rare values (men more than women), so the values left in
        the release are over-represented. People released with such a value are moved to
        the group of the same values but that cell masked, the fewest at a time that keep
        every group at least k (one person when their group keeps k without them and the
        group they join has k already; else k of them, or their whole group), while the
        move lowers the loss (`total_loss`: the cells lost against the share shift they take
        back) and some share exceeds the truth by more than `REBALANCED` sampling errors.
        People with no cell masked yet are moved only while those with a masked cell stay
        within the suppression limit.
        """
        n_cols = len(self.columns)
        if not n_cols or not any(cells.any() for cells in masked):
            return
        cards = [self.columns[i].cards[node[i]] for i in range(n_cols)]
        keys, members = self._released_groups(node, masked, left_out, cards)
        touched = np.zeros(self.size, dtype=np.bool_)
        for cells in masked:
            touched |= cells
        room: float = self.limit - int(touched.sum())
        for i, column in enumerate(self.columns):
            if column.spec.fixed or node[i] >= column.top or not masked[i].any():
                continue
            # A cell's loss against the shift it takes back (`total_loss`).
            cost = float(column.cell_loss[node[i]].mean())
            cost = (1.0 - cost) / (SHIFT_COST * self.size)
            while (
                move := self._worthwhile_move(i, cards[i], members, touched, room, shares, cost)
            ) is not None:
                room = self._move(i, move, keys, members, masked, touched, room, shares)

    def _released_groups(
        self,
        node: tuple[int, ...],
        masked: list[npt.NDArray[np.bool_]],
        left_out: npt.NDArray[np.bool_],
        cards: list[int],
    ) -> tuple[dict[int, tuple[int, ...]], dict[tuple[int, ...], list[int]]]:
        """The people released at `node`, by their values (a masked cell: the column's
        card), and the groups of the same values."""
        full = [
            np.where(masked[i], cards[i], self.columns[i].codes[node[i]])
            for i in range(len(self.columns))
        ]
        released = np.flatnonzero(~left_out)
        keys: dict[int, tuple[int, ...]] = {
            int(r): key
            for r, key in zip(
                released.tolist(),
                zip(*(f[released].tolist() for f in full), strict=True),
                strict=True,
            )
        }
        members: dict[tuple[int, ...], list[int]] = {}
        for r, key in keys.items():
            members.setdefault(key, []).append(r)
        return keys, members

    def _worthwhile_move(
        self,
        index: int,
        masked_code: int,
        members: Mapping[tuple[int, ...], list[int]],
        touched: npt.NDArray[np.bool_],
        room: float,
        shares: _Shares,
        cost: float,
    ) -> _Move | None:
        """The smallest move of the most over-represented value of column `index` whose
        share shift taken back is worth its cells, if any."""
        kept = shares.kept[index]
        total = kept.sum()
        if total <= 1:
            return None
        # Beyond half the sampling error of each share (sqrt(p (1 - p) / n)): a smaller
        # shift is lost in the noise of any sample of this size, and not worth masking
        # cells for (about 1.3 points at 300 people, 0.2 at 10,000).
        truth = shares.share[index]
        excess = kept / total - truth - REBALANCED * np.sqrt(truth * (1 - truth) / total)
        for code in (int(c) for c in np.argsort(-excess, kind="stable")):
            if excess[code] <= 0:
                return None
            move = self._smallest_move(index, code, masked_code, members, touched, room)
            if move is None:
                continue
            size = len(move[2])
            gain = shares.shift(index) - shares.shift_without(index, code, size)
            if gain > cost * size:
                return move  # worth its cells
        return None

    def _move(
        self,
        index: int,
        move: _Move,
        keys: dict[int, tuple[int, ...]],
        members: dict[tuple[int, ...], list[int]],
        masked: list[npt.NDArray[np.bool_]],
        touched: npt.NDArray[np.bool_],
        room: float,
        shares: _Shares,
    ) -> float:
        """The people of `move` into the group they join, their cell of column `index`
        masked; the room left under the suppression limit."""
        code, target, rows = move
        source = keys[rows[0]]
        members[source] = [r for r in members[source] if r not in set(rows)]
        if not members[source]:
            del members[source]
        members.setdefault(target, []).extend(rows)
        for r in rows:
            keys[r] = target
            masked[index][r] = True
            if not touched[r]:
                touched[r] = True
                room -= 1
        shares.kept[index][code] -= len(rows)
        return room

    def _smallest_move(
        self,
        index: int,
        code: int,
        masked_code: int,
        members: Mapping[tuple[int, ...], list[int]],
        touched: npt.NDArray[np.bool_],
        room: float,
    ) -> _Move | None:
        """The fewest people of value `code` in column `index` that can have that cell
        masked together, every group staying >= k: from a group, into the group of the
        same values but that cell masked (which must reach k)."""
        best: _Move | None = None
        for key, rows in members.items():
            if key[index] != code:
                continue
            size = len(rows)
            target = (*key[:index], masked_code, *key[index + 1 :])
            there = len(members.get(target, ()))
            need = max(1, self.k - there)
            if size - need >= self.k:
                count = need
            elif size >= need:
                count = size  # the whole group
            else:
                continue
            if best is not None and count >= len(best[2]):
                continue
            # People with a masked cell already first: they add nothing to the limit.
            ordered = np.array(rows, dtype=np.int64)
            chosen = ordered[np.argsort(~touched[ordered], kind="stable")][:count].tolist()
            if count - int(touched[chosen].sum()) > room:
                continue
            best = (code, target, chosen)
            if count == 1:
                break
        return best

    def _shift_factor(self, shares: _Shares, index: int, rows: Codes) -> float:
        """The cost of masking column `index` for `rows`, per cell and unit of weight: 1,
        plus the change of the column's share shift (`total_loss`) spread over the cells
        (at least a tenth of a cell: a change that moves shares back is welcome, not free).
        """
        change = shares.shift_after(index, rows) - shares.shift(index)
        return max(1.0 + SHIFT_COST * change * self.size / max(rows.size, 1), 0.1)

    def total_loss(
        self,
        node: tuple[int, ...],
        masked: list[npt.NDArray[np.bool_]],
        left_out: npt.NDArray[np.bool_],
    ) -> float:
        if not self.size:
            return 0.0
        total = 0.0
        for column, level, cells in zip(self.columns, node, masked, strict=True):
            if column.spec.fixed:
                continue  # released as it is (its people left out are counted elsewhere)
            loss = np.where(cells | left_out, 1.0, column.cell_loss[level])
            total += column.spec.weight * float(loss.sum())
            if level < column.top and cells.any():
                codes, card = column.codes[level], column.cards[level]
                true = np.bincount(codes, minlength=card) / self.size
                kept = codes[~(cells | left_out)]
                out = np.bincount(kept, minlength=card) / max(kept.size, 1)
                shift = 0.5 * float(np.abs(true - out).sum())
                beyond = max(0.0, shift - SHIFT_TOLERATED)
                cost = SHIFT_COST * shift + SHIFT_BEYOND * beyond
                total += column.spec.weight * cost * self.size
        return total / (self.total_weight * self.size)

    def masks_whole(self, index: int, level: int) -> bool:
        """Whether `level` masks for everyone a column kept whole (`QuasiIdentifier.whole`)."""
        column = self.columns[index]
        whole = self.keep_whole and column.spec.whole
        return whole and column.top_masks and level == column.top

    def kept_top(self) -> tuple[int, ...]:
        """The top of the nodes that mask no column kept whole: each such column at its
        coarsest level short of masked, every other column masked."""
        return tuple(
            column.top - 1 if self.masks_whole(i, column.top) else column.top
            for i, column in enumerate(self.columns)
        )

    def masks_any_whole(self, node: tuple[int, ...]) -> bool:
        return any(self.masks_whole(i, level) for i, level in enumerate(node))

    def cheapest_cell(self, node: tuple[int, ...]) -> float:
        """Least loss that masking one more cell of one record can add (a lower bound)."""
        costs = [
            c.spec.weight * (1.0 - c.mean_loss[lv])
            for c, lv in zip(self.columns, node, strict=True)
            if lv < c.top
        ]
        return min(costs, default=0.0) / self.total_weight

    def count(self, node: tuple[int, ...]) -> npt.NDArray[np.bool_]:
        """The outliers of a node (one grouping of every record: the unit of work).

        Counted once per node and remembered (`REMEMBERED_BYTES`): a node counted again is
        read back. It still counts as a grouping against the budget (`evaluated`), so the
        search visits the same nodes, in the same order, as when each was grouped again."""
        self.evaluated += 1
        packed = self.remembered.get(node)
        if packed is not None:
            again: npt.NDArray[np.bool_] = np.unpackbits(packed, count=self.size).view(np.bool_)
            return again
        outliers = _outliers(self.key(node), self.k)
        if self.remembered_bytes < REMEMBERED_BYTES:
            packed = np.packbits(outliers)
            self.remembered[node] = packed
            self.remembered_bytes += packed.nbytes
        return outliers

    def estimate(self, node: tuple[int, ...], outliers: int) -> float:
        """Generalisation loss plus the outliers at the suppression cost seen so far."""
        return self.generalisation_loss(node) + outliers / self.size * self.cost_per_outlier

    def try_node(self, node: tuple[int, ...], outliers: npt.NDArray[np.bool_]) -> None:
        """Suppress locally at `node`; keep it if it beats the best so far."""
        if node != self.top:
            if int(outliers.sum()) > self.limit:
                return  # over the suppression limit
            if self.masks_any_whole(node):
                return  # a column kept whole is masked for everyone
        outcome = self.suppress(node, outliers)
        self.tried.add(node)
        count = int(outliers.sum())
        if count:
            spent = (outcome.loss - self.generalisation_loss(node)) * self.size / count
            self.spent.append(spent)
            self.cost_per_outlier = float(np.median(self.spent))
        if self.best is None or outcome.loss < self.best.loss:
            self.best = outcome

    def specialise(self, start: tuple[int, ...] | None = None) -> None:
        """A greedy path from `start` (by default the top node: all masked) down to the raw
        data.

        Each step lowers the one column whose lowering gives the least estimated loss,
        among the nodes within the suppression limit (any node, once none is); local
        suppression is then tried at the best nodes of the path within the limit.
        """
        node = start or self.top
        count = int(self.count(node).sum())
        ok = node == self.top or (count <= self.limit and not self.masks_any_whole(node))
        path = [(self.estimate(node, count), node, ok)]
        while True:
            steps = []
            for i in range(len(node)):
                if node[i] > 0:
                    lower = (*node[:i], node[i] - 1, *node[i + 1 :])
                    count = int(self.count(lower).sum())
                    steps.append((count > self.limit, self.estimate(lower, count), lower))
            if not steps:
                break
            over, estimate, node = min(steps)
            path.append((estimate, node, not over and not self.masks_any_whole(node)))
        feasible = sorted((e, n) for e, n, ok in path if ok)
        for _, candidate in feasible[:CANDIDATES]:
            if candidate not in self.tried:
                self.try_node(candidate, self.count(candidate))

    def climb(self) -> None:
        """From the best node, move one level up or down a column while the loss drops."""
        while self.best is not None:
            start = self.best.node
            for i, column in enumerate(self.columns):
                for step in (-1, 1):
                    level = start[i] + step
                    if 0 <= level <= column.top:
                        near = (*start[:i], level, *start[i + 1 :])
                        if near not in self.tried:
                            outliers = self.count(near)
                            if self.estimate(near, int(outliers.sum())) < 1.2 * self.best.loss:
                                self.try_node(near, outliers)
            if self.best.node == start:
                return

    def run(self, budget: int) -> tuple[_Outcome, bool]:
        """Greedy paths and a climb, then best-first lattice search by generalisation loss.

        The greedy paths (once with a prior cost per outlier, once with the cost measured
        at their nodes) and the climb give a good release quickly. The lattice search then
        visits nodes in order of generalisation loss, which only grows towards the top,
        until it reaches the best total loss (then no other node can do better, up to the
        estimate that decides where local suppression is tried: `exhaustive`) or has made
        `budget` groupings in all.
        """
        self.try_node(self.top, self.count(self.top))  # safe by construction
        self.specialise()
        self.specialise()
        # The top of the nodes that mask no column kept whole: each such column at its
        # coarsest level short of masked.
        kept_top = self.kept_top()
        if kept_top != self.top:
            self.specialise(kept_top)
            self.specialise(kept_top)
        self.climb()
        bottom = tuple(0 for _ in self.columns)
        seen = {bottom}
        queue: list[tuple[float, tuple[int, ...]]] = [(self.generalisation_loss(bottom), bottom)]
        exhaustive = True
        while queue:
            g, node = heapq.heappop(queue)
            assert self.best is not None
            if g >= self.best.loss:
                break
            if self.evaluated >= budget:
                exhaustive = False
                break
            outliers = self.count(node)
            count = int(outliers.sum())
            if (
                node not in self.tried
                and self.estimate(node, count) < self.best.loss
                and g + count / self.size * self.cheapest_cell(node) < self.best.loss
            ):
                self.try_node(node, outliers)
            if count == 0:
                continue  # coarser nodes only lose more
            for i, column in enumerate(self.columns):
                if node[i] < column.top:
                    successor = (*node[:i], node[i] + 1, *node[i + 1 :])
                    if successor not in seen:
                        seen.add(successor)
                        heapq.heappush(queue, (self.generalisation_loss(successor), successor))
        assert self.best is not None
        return self.best, exhaustive


_TRANSPOSED = 4096  # records read into columns at a time (`_columns_of`)


def _columns_of(records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[Sequence[Any]]:
    """Each named column's values in the records' order, None where a record has none
    (`get`). Records kept by column (`Columns`) give their columns as they are. Plain dicts
    holding every name are read a row at a time, one C call per record (`itemgetter`), by
    slices of `_TRANSPOSED` records (a slice's tuples are held at once); anything else a
    value at a time."""
    if isinstance(records, Columns):
        return [records.column(name) for name in names]
    if len(names) < 2 or not all(type(record) is dict for record in records):
        return [list(map(operator.methodcaller("get", name), records)) for name in names]
    columns: list[list[Any]] = [[] for _ in names]
    row = operator.itemgetter(*names)
    try:
        for start in range(0, len(records), _TRANSPOSED):
            rows = map(row, records[start : start + _TRANSPOSED])
            for column, values in zip(columns, zip(*rows, strict=True), strict=True):
                column.extend(values)
    except KeyError:  # a record without some column: None there
        return [list(map(operator.methodcaller("get", name), records)) for name in names]
    return [*columns]


def anonymise(
    records: Sequence[Mapping[str, Any]],
    quasi_identifiers: Sequence[QuasiIdentifier],
    k: int,
    *,
    max_suppressed: float = 0.05,
    node_budget: int = DEFAULT_NODE_BUDGET,
    rows: bool = True,
) -> Release:
    """Release `records` so that every combination of QI values is shared by >= k of them.

    `rows=False`: no released copy of each record (`Release.records` empty); the released
    values come by column instead (`Release.columns`), so that a caller with many records
    can build what it needs once the search's arrays are freed."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a whole number of at least 1, not {k!r}")
    names = [q.column for q in quasi_identifiers]
    if len(set(names)) != len(names):
        raise ValueError("each quasi-identifier column must be given once")
    size = len(records)
    raw = dict(zip(names, _columns_of(records, names), strict=True))
    prepared = {q.column: _prepare(q, raw[q.column]) for q in quasi_identifiers}
    columns = [c for c in prepared.values() if c is not None]
    if not 0 <= max_suppressed <= 1:
        raise ValueError(f"max_suppressed is a share (0 to 1), not {max_suppressed!r}")
    if not size:
        return _empty_release(quasi_identifiers, k)
    outcome, exhaustive, evaluated = _search(columns, size, k, max_suppressed, node_budget)
    chosen = {c.spec.column: c.levels[lv] for c, lv in zip(columns, outcome.node, strict=True)}
    masked = {c.spec.column: m for c, m in zip(columns, outcome.masked, strict=True)}
    levels = {q.column: chosen.get(q.column, 0) for q in quasi_identifiers}
    at_level = {c.spec.column: (c, lv) for c, lv in zip(columns, outcome.node, strict=True)}

    kept = [i for i in range(size) if not outcome.left_out[i]]
    left_out = [i for i in range(size) if outcome.left_out[i]]
    everyone = len(kept) == size
    keep = ~outcome.left_out
    out_columns, out_codes = _released_cells(columns, outcome, masked, keep, codes=not rows)
    released_columns: dict[str, Sequence[Any]] = {}
    for q in quasi_identifiers:
        given = out_columns.get(q.column, raw[q.column])
        released_columns[q.column] = given if everyone else list(map(given.__getitem__, kept))
    released: list[dict[str, Any]] = []
    if rows:
        for i in kept:
            row = dict(records[i])
            for name, values in out_columns.items():
                row[name] = values[i]
            released.append(row)

    reports: list[ColumnReport] = []
    for q in quasi_identifiers:
        out, true_raw, local = _counted(
            q.column, at_level, masked, released_columns, raw, kept, keep
        )
        constant = prepared[q.column] is None
        reports.append(
            _column_report(q, levels[q.column], constant, out, true_raw, len(kept), local)
        )
    report = UtilityReport(
        k=k,
        people=size,
        released=len(kept),
        left_out=len(left_out),
        loss=outcome.loss,
        columns=tuple(reports),
        nodes_evaluated=evaluated,
        exhaustive=exhaustive,
    )
    return Release(
        k=k,
        levels=levels,
        records=released,
        kept=kept,
        left_out=left_out,
        report=report,
        columns={} if rows else released_columns,
        codes=out_codes,
    )


def _search(
    columns: list[_Column], size: int, k: int, max_suppressed: float, node_budget: int
) -> tuple[_Outcome, bool, int]:
    """The search's outcome, whether it was exhaustive, and how many nodes it evaluated."""
    search = _Search(columns, size, k, max_suppressed)
    outcome, exhaustive = search.run(node_budget)
    evaluated = search.evaluated
    if outcome.node == search.top and search.kept_top() != search.top:
        # No node within the suppression limit keeps every column kept whole. Rather than
        # mask everything (the last resort), first raise the limit to what keeping them all
        # needs (their coarsest levels, every other column masked: a few more people with
        # a masked cell, against a column masked for everyone), then, if that is not
        # enough, let the search mask some of them for everyone.
        needed = int(search.count(search.kept_top()).sum()) / max(size, 1)
        for limit, keep_whole in ((max(needed, max_suppressed), True), (max_suppressed, False)):
            search = _Search(columns, size, k, limit, keep_whole=keep_whole)
            outcome, exhaustive = search.run(node_budget)
            evaluated += search.evaluated
            if outcome.node != search.top:
                break
    return outcome, exhaustive, evaluated


def _released_cells(
    columns: list[_Column],
    outcome: _Outcome,
    masked: Mapping[str, npt.NDArray[np.bool_]],
    keep: npt.NDArray[np.bool_],
    *,
    codes: bool,
) -> tuple[dict[str, Sequence[Any]], dict[str, tuple[Codes, Sequence[Any]]]]:
    """Each active column's released values, for everyone (MASKED where masked), and with
    `codes` the same values as codes for the people released (MASKED the code after the
    level's values)."""
    everyone = bool(keep.all())
    out_columns: dict[str, Sequence[Any]] = {}
    out_codes: dict[str, tuple[Codes, Sequence[Any]]] = {}
    for column, level in zip(columns, outcome.node, strict=True):
        name = column.spec.column
        cells = list(map(column.values[level].__getitem__, column.codes[level].tolist()))
        for i in np.flatnonzero(masked[name]).tolist():
            cells[i] = MASKED
        out_columns[name] = cells
        if codes:
            # The smallest integers that hold the codes (bytes, not 8 bytes, per record).
            small = np.min_scalar_type(column.cards[level])
            shown = np.where(masked[name], column.cards[level], column.codes[level]).astype(small)
            out_codes[name] = (
                shown if everyone else shown[keep],
                (*column.values[level], MASKED),
            )
    return out_columns, out_codes


def _counted(
    name: str,
    at_level: Mapping[str, tuple[_Column, int]],
    masked: Mapping[str, npt.NDArray[np.bool_]],
    released_columns: Mapping[str, Sequence[Any]],
    raw: Mapping[str, Sequence[Any]],
    kept: list[int],
    keep: npt.NDArray[np.bool_],
) -> tuple[Counter[Any], Counter[Any], int]:
    """A column's values counted over the people released: as released, as they truly are,
    and how many cells were masked. An active column's from its codes (one bincount each),
    any other's value by value."""
    active = at_level.get(name)
    if active is None:
        return Counter(released_columns[name]), Counter(map(raw[name].__getitem__, kept)), 0
    column, lv = active
    hidden = masked[name]
    out = _tally(column.values[lv], column.codes[lv], column.cards[lv], keep & ~hidden)
    local = int((keep & hidden).sum())
    if local:
        out[MASKED] += local
    true_raw = _tally(column.values[0], column.codes[0], column.cards[0], keep)
    return out, true_raw, local


def _empty_release(quasi_identifiers: Sequence[QuasiIdentifier], k: int) -> Release:
    """Nobody to release (the people were erased between the count and the plan): every
    column at its own level, nothing lost."""
    reports = tuple(
        _column_report(q, 0, True, Counter(), Counter(), 0, 0) for q in quasi_identifiers
    )
    report = UtilityReport(
        k=k,
        people=0,
        released=0,
        left_out=0,
        loss=0.0,
        columns=reports,
        nodes_evaluated=0,
        exhaustive=True,
    )
    levels = {q.column: 0 for q in quasi_identifiers}
    return Release(k=k, levels=levels, records=[], kept=[], left_out=[], report=report)


def _tally(
    values: Sequence[Any], codes: Codes, card: int, where: npt.NDArray[np.bool_]
) -> Counter[Any]:
    """How many of the records `where` selects have each value (`values[code]`, distinct
    values: `_encode`), as a Counter of the values present."""
    counts = np.bincount(codes[where], minlength=card).tolist()
    return Counter({values[code]: count for code, count in enumerate(counts) if count})


def _column_report(
    spec: QuasiIdentifier,
    level: int,
    constant: bool,
    out: Counter[Any],
    true_raw: Counter[Any],
    released: int,
    local: int,
) -> ColumnReport:
    """`out`: the released values of the people released, counted (`MASKED` for the cells
    masked, `local` of them cell by cell); `true_raw`: their raw values, counted; `released`:
    how many they are."""
    cells_masked = out.pop(MASKED, 0)
    out.pop(None, None)
    shares: tuple[CategoryShift, ...] = ()
    if level <= len(spec.ladder):
        # The truth of the same people as released: those left out are counted apart
        # (`UtilityReport.left_out`), not as a shift of the shares. The ladder is applied
        # once per distinct raw value.
        truth: Counter[Any] = Counter()
        for value, count in true_raw.items():
            if value is not None:
                truth[spec.apply(level, value)] += count
        true_total = sum(truth.values())
        out_total = sum(out.values())
        shares = tuple(
            CategoryShift(
                category=category,
                true_count=truth[category],
                true_share=truth[category] / true_total if true_total else 0.0,
                released_count=out[category],
                released_share=out[category] / out_total if out_total else 0.0,
            )
            for category in sorted(truth, key=repr)
        )
    return ColumnReport(
        column=spec.column,
        level=level,
        level_name=spec.level_name(level),
        constant=constant,
        cells_masked=cells_masked,
        cells_masked_locally=local,
        released=released,
        shares=shares,
    )
