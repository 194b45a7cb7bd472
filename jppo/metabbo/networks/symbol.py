r"""SYMBOL's actor and critic (MetaBox's `symbol.py`) in NNX, with MetaBox's call conventions
(`fix_action=`; critic `(detached, value)`) and torch names (`lstm.weight_ih_l0`, `output_net.weight`,
`x_to_c.weight`, `constval_net.weight`; critic `value_net.weight`).

SYMBOL writes an update rule x ← x + τ(x, gb, gw, dx, randx, pb) as a binary expression tree, one
token per step, in prefix order. The tree lives in an array of L = 2^max_layer - 1 slots (node p
has children 2p + 1, 2p + 2; max_layer 6: L = 63). Tokens (V = 11):

    0 '+'  1 '*'  (binary)   2 '-'  (unary)   3 'C-1'  4 'C0'  (constants)   5..10 x gb gw dx randx pb

A constant token also draws a class k ∈ {0, .., K-1} (K = ⌊(max_c - min_c) / c_interval⌋ = 4) and
stands for (min_c + k · c_interval) · 10^e, e = -1 ('C-1') or 0 ('C0').

The policy at state s (MetaBox's 9 features), step t, with b_t the 4-bit code of (token + 1) written
into the input at the slot it fills:

    h_0 = 0,   c_0 = W_xc s + b_xc                              (x_to_c: the state seeds the cell)
    u_t = Σ_{j<t} onehot(p_j) ⊗ b_j ∈ {0, 1}^{4L}                 (the tree so far; u_0 = 0)
    (o_t, h_t, c_t) = LSTM(u_t, h_{t-1}, c_{t-1})
    π_t = Categorical(softmax(where(m_t, W_out o_t + b_out, -∞)))   (m_t: the grammar's mask)
    κ_t = Categorical(softmax(W_c o_t + b_c))                       (the constant's class)

    log π(rule | s) = Σ_t [log π_t(a_t) + 1[a_t const] log κ_t(k_t)]
    H(s)           = Σ_t [H(π_t) + π_t(consts) · H(κ_t)]

(torch's `Categorical(probs)`, clamp included: `acting.torch_categorical`). H is the entropy of each
step's joint (token, constant) choice given the tree so far, summed along the sampled tree; MetaBox's
actor returns no entropy (its loop logs 0).

Where each part runs, and why:

* **Sampling runs on the host** (`generate`): the mask m_t is a function of the tree written so far
  through MetaBox's grammar (recursive walks along chains of '+' and '-', prefix comparisons of
  subtrees: `grammar_mask`), and the next slot p_{t+1} depends on the token just drawn
  (`next_position`); so step t + 1 cannot be traced before step t's token is known. Each step is one
  call of `step` (the LSTM step and the two draws, compilable: the port jits it) on the whole batch;
  rows whose tree is finished keep stepping with an all-ones mask and are ignored, so the batch keeps
  its shape (MetaBox's shrinks). A tree has at most L tokens.
* **What sampling chose is recorded as padded arrays** (`UpdateRule`, [B, L]): tokens a_t, slots
  p_t, masks m_t, constant classes k_t, and `valid` (t < the tree's length). Everything the
  log-probability needs is there, so
* **log-probabilities and entropies run compiled** (`log_prob_entropy`, the path of `fix_action=`):
  one `lax.scan` over the L steps for a whole batch — a PPO window of T steps × B envs is one call,
  padded steps contributing 0. This is what compat's `_evaluate` differentiates.

MetaBox reads a stored constant back as ⌊(c - min_c) / c_interval⌋ from its value c; in float32
the value of class 1 (-0.6) reads back as class 0, so MetaBox's re-evaluation scores another
constant than it drew unless torch runs in float64. The recorded class k_t avoids the round trip.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from jppo.metabbo.networks.acting import torch_categorical
from jppo.metabbo.networks.layers import LSTM, check_input, torch_linear

VOCAB = ("+", "*", "-", "C-1", "C0", "x", "gb", "gw", "dx", "randx", "pb")
VARIABLES = ("x", "gb", "gw", "dx", "randx", "pb")  # the env's update function takes them in this order
PLUS, TIMES, MINUS = 0, 1, 2
BINARY, OPERATORS = (0, 1), (0, 1, 2)
CONSTS = (3, 4)
LEAVES = tuple(range(3, 11))
VARS = tuple(range(5, 11))
X, RANDX = 5, 9
CODE_LEN = 4  # bits of (token + 1) written into the LSTM's input


def tree_slots(max_layer: int) -> int:
    """L = 2^max_layer - 1, the slots of a full binary tree of max_layer levels."""
    return int(2**max_layer - 1)


def constant_classes(max_c: float, min_c: float, c_interval: float) -> int:
    """K = ⌊(max_c - min_c) / c_interval⌋ in float arithmetic, as MetaBox computes it (4 for 1, -1, 0.4)."""
    return int((max_c - min_c) // c_interval)


# --------------------------------------------------------------------------- the grammar (host)


def _prefix(seq, root: int) -> list[int]:
    """The tokens of the subtree at `root` in prefix order (empty where nothing is written)."""
    if root >= len(seq) or seq[root] == -1:
        return []
    return [int(seq[root]), *_prefix(seq, 2 * root + 1), *_prefix(seq, 2 * root + 2)]


def _token(seq, slot: int) -> int:
    """The token at `slot`; slot -1 is the last slot, as a Python index (MetaBox's tokenizer reads it so)."""
    return int(seq[slot])


def _ancestor(seq, slot: int, token: int) -> int:
    """The nearest proper ancestor of `slot` holding `token`, or -1."""
    while slot > 0:
        slot = (slot - 1) // 2
        if _token(seq, slot) == token:
            return slot
    return -1


def _plus_chain(seq, begin: int, visited) -> tuple[list[int], bool]:
    """Walk the chain of '+' nodes through `begin` (up to '+' parents, down to '+' children): the
    slots of the chain's non-'+' operands written so far, and whether the chain holds a '+' root."""
    visited[begin] = 1
    operands, at_root = [], begin == 0 and _token(seq, 0) == PLUS
    parent = (begin - 1) // 2
    if begin != 0 and not visited[parent] and _token(seq, parent) == PLUS:
        more, flag = _plus_chain(seq, parent, visited)
        operands += more
        at_root |= flag
    for child in (2 * begin + 1, 2 * begin + 2):
        if not visited[child] and seq[child] != -1:
            if _token(seq, child) == PLUS:
                more, flag = _plus_chain(seq, child, visited)
                operands += more
                at_root |= flag
            else:
                operands.append(child)
    return operands, at_root


def _plus_chain_negated(seq, begin: int, visited) -> list[int]:
    """Along the chain of '+' nodes through `begin`: the operand slots under a '-' child. As MetaBox's
    walk does, the right child's entry is taken when the *left* child is '-' (and the slot is the
    right child's left child)."""
    visited[begin] = 1
    slots = []
    parent = (begin - 1) // 2
    if begin != 0 and not visited[parent] and _token(seq, parent) == PLUS:
        slots += _plus_chain_negated(seq, parent, visited)
    left, right = 2 * begin + 1, 2 * begin + 2
    left_token = None
    if not visited[left] and seq[left] != -1:
        left_token = _token(seq, left)
        if left_token == PLUS:
            slots += _plus_chain_negated(seq, left, visited)
        elif left_token == MINUS:
            slots.append(2 * left + 1)
    if not visited[right] and seq[right] != -1:
        if _token(seq, right) == PLUS:
            slots += _plus_chain_negated(seq, right, visited)
        elif left_token == MINUS:
            slots.append(2 * right + 1)
    return slots


def _repeats(target: list[int], candidates: list[list[int]]) -> list[int]:
    """Last tokens of the candidates that extend `target` by one token, unless randx or a constant."""
    out = []
    for cand in candidates:
        if len(cand) == len(target) + 1 and cand[:-1] == target and cand[-1] != RANDX and cand[-1] not in CONSTS:
            out.append(cand[-1])
    return out


def grammar_mask(seq, slot: int, max_layer: int) -> np.ndarray:
    """MetaBox's grammar: which tokens may fill `slot` of the partial tree `seq` [L] (-1: empty), bool [V].

    The rules, each removing tokens: the root is '+' or '*'; slots on the last level take leaves;
    children of '+' and '-' are no constants; a right child after a constant sibling, and a child of
    '-', is no constant; a '+' does not repeat its left leaf operand (randx may repeat); children of
    '*' are neither '*' nor '-', and its right child is a constant exactly when the left one is not;
    on the first three levels a child of '*' is no variable and, after a leaf sibling or under '-',
    no leaf; a direct child of '-' is neither '+' nor '-' (nor x under a '-' root); and along chains
    of '+' (through '-') a term that would cancel or repeat one already written is removed.
    """
    V = len(VOCAB)
    mask = np.ones(V, bool)
    if slot == -1:
        return np.zeros(V, bool)
    if slot == 0:
        mask[list(LEAVES)] = False
        mask[MINUS] = False
        return mask
    parent = (slot - 1) // 2
    father = _token(seq, parent)
    is_right = slot % 2 == 0
    if (father in BINARY and is_right) or father == MINUS:
        neg = _ancestor(seq, slot, MINUS)
        if neg == parent:
            mask[[PLUS, MINUS]] = False
            if neg == 0:
                mask[X] = False
        if neg != -1:
            target = _prefix(seq, neg)
            up = (neg - 1) // 2
            if _token(seq, up) == PLUS:
                visited = np.zeros(len(seq), np.int64)
                visited[neg] = 1
                operands, at_root = _plus_chain(seq, up, visited)
                candidates = [_prefix(seq, s) for s in operands] + ([[X]] if at_root else [])
                mask[_repeats(target[1:], candidates)] = False
    if father == PLUS or (father in BINARY and is_right) or father == MINUS:
        plus = _ancestor(seq, slot, PLUS)
        if plus != -1:
            visited = np.zeros(len(seq), np.int64)
            side = 2 * plus + 1 if father == PLUS and _on_left(slot, plus) else 2 * plus + 2
            visited[side] = 1
            target = _prefix(seq, side)
            candidates = [_prefix(seq, s) for s in _plus_chain_negated(seq, plus, visited)]
            mask[_repeats(target, candidates)] = False
    if father == MINUS or (father in BINARY and is_right and _token(seq, 2 * parent + 1) in CONSTS):
        mask[list(CONSTS)] = False
    if father in (PLUS, MINUS):
        mask[list(CONSTS)] = False
    if father == PLUS and is_right:
        left = _token(seq, slot - 1)
        if left in LEAVES and left != RANDX:
            mask[left] = False
    if father == TIMES:
        mask[[TIMES, MINUS]] = False
        if is_right:
            if _token(seq, slot - 1) in CONSTS:
                mask[list(CONSTS)] = False
            else:
                mask[[t for t in range(V) if t not in CONSTS]] = False
    if math.floor(math.log2(slot + 1)) + 1 <= 3:
        if father == TIMES:
            mask[list(VARS)] = False
        elif (father in BINARY and is_right and _token(seq, slot - 1) in LEAVES) or father == MINUS:
            mask[list(LEAVES)] = False
    if slot >= int(2 ** (max_layer - 1) - 1):
        mask[list(OPERATORS)] = False
    return mask


def _on_left(slot: int, root: int) -> bool:
    """Whether `slot` lies in the left subtree of its ancestor `root`."""
    while (slot - 1) // 2 != root:
        slot = (slot - 1) // 2
    return slot == 2 * root + 1


def next_position(seq, slot: int) -> int:
    """The slot written after `slot` (its token already in `seq`): an operator's left child; after a
    leaf, the right child of the nearest binary ancestor whose right child is still empty; -1 when
    the tree is complete."""
    if _token(seq, slot) in OPERATORS:
        return 2 * slot + 1
    while slot > 0:
        parent = (slot - 1) // 2
        if _token(seq, parent) in BINARY and seq[2 * parent + 2] == -1:
            return 2 * parent + 2
        slot = parent
    return -1


def expression(seq, consts) -> str:
    """The infix string of the tree `seq` [L] with constant values `consts` [L], as MetaBox's env parses
    it: '(a+b)', '(a*b)', '-(a)', a constant 'C{e}' with value c as `str(c · 10**e)`."""
    def infix(slot):
        token = _token(seq, slot)
        if token in BINARY:
            return "(" + infix(2 * slot + 1) + VOCAB[token] + infix(2 * slot + 2) + ")"
        if token == MINUS:
            return "-(" + infix(2 * slot + 1) + ")"
        if token in CONSTS:
            return str(float(consts[slot]) * 10 ** int(VOCAB[token][1:]))
        return VOCAB[token]

    if seq[0] == -1:
        raise ValueError("the update rule is empty (no token at the root)")
    return infix(0)


# --------------------------------------------------------------------------- the recorded action


@struct.dataclass
class UpdateRule:
    """What sampling chose, per env of the batch [B] and step t < L (padded past each tree's end):

    tokens [B, L] int, positions [B, L] int (the slot each token fills), masks [B, L, V] bool (the
    grammar's mask at that step), constants [B, L] int (the constant's class; 0 where no constant),
    valid [B, L] bool (t < the tree's length).
    """

    tokens: jax.Array
    positions: jax.Array
    masks: jax.Array
    constants: jax.Array
    valid: jax.Array

    def trees(self, min_c: float, c_interval: float):
        """`(seq [B, L], const_vals [B, L])` on the host: each slot's token (-1 empty) and constant value."""
        tokens, positions, valid = (np.asarray(a) for a in (self.tokens, self.positions, self.valid))
        classes = np.asarray(self.constants)
        b, L = tokens.shape
        seq, vals = np.full((b, L), -1, np.int64), np.zeros((b, L))
        for i in range(b):
            for t in np.flatnonzero(valid[i]):
                seq[i, positions[i, t]] = tokens[i, t]
                if tokens[i, t] in CONSTS:
                    vals[i, positions[i, t]] = min_c + int(classes[i, t]) * c_interval
        return seq, vals

    def expressions(self, min_c: float, c_interval: float) -> list[str]:
        """The update rule of each env as the infix string MetaBox's env takes (`expression`)."""
        seq, vals = self.trees(min_c, c_interval)
        return [expression(s, v) for s, v in zip(seq, vals)]


def generate(step, carry, batch: int, key, max_layer: int) -> UpdateRule:
    """Sample a batch of update rules on the host (see the module docstring).

    `step(carry, u, mask, key) -> (token [B], const_class [B], carry)` runs the LSTM step on the tree
    input u [B, 4L] and draws from the masked token and constant distributions; `carry` is its initial
    state. At most L steps; finished rows keep stepping with an all-ones mask and are not recorded.
    """
    L, V = tree_slots(max_layer), len(VOCAB)
    seq = np.full((batch, L), -1, np.int64)
    slot = np.zeros(batch, np.int64)
    alive = np.ones(batch, bool)
    u = np.zeros((batch, L * CODE_LEN))
    rec = dict(tokens=np.zeros((batch, L), np.int32), positions=np.zeros((batch, L), np.int32),
               masks=np.ones((batch, L, V), bool), constants=np.zeros((batch, L), np.int32),
               valid=np.zeros((batch, L), bool))
    for t in range(L):
        if not alive.any():
            break
        masks = np.ones((batch, V), bool)
        for i in np.flatnonzero(alive):
            masks[i] = grammar_mask(seq[i], int(slot[i]), max_layer)
            if not masks[i].any():
                raise RuntimeError(f"the grammar leaves no token for slot {slot[i]} of tree {seq[i].tolist()}")
        key, sub = jax.random.split(key)
        token, klass, carry = step(carry, jnp.asarray(u), jnp.asarray(masks), sub)
        token, klass = np.asarray(token), np.asarray(klass)
        for i in np.flatnonzero(alive):
            p, a = int(slot[i]), int(token[i])
            rec["tokens"][i, t], rec["positions"][i, t], rec["masks"][i, t] = a, p, masks[i]
            rec["constants"][i, t] = int(klass[i]) if a in CONSTS else 0
            rec["valid"][i, t] = True
            seq[i, p] = a
            u[i, p * CODE_LEN:(p + 1) * CODE_LEN] = [(a + 1) >> (CODE_LEN - 1 - j) & 1 for j in range(CODE_LEN)]
            slot[i] = next_position(seq[i], p)
            alive[i] = slot[i] != -1
    if alive.any():
        raise RuntimeError(f"{int(alive.sum())} update rule(s) still open after {L} tokens")
    return UpdateRule(**rec)


# --------------------------------------------------------------------------- the networks


class SYMBOLActor(nnx.Module):
    r"""SYMBOL's `LSTM(max_layer, hidden_dim, num_layers, max_c, min_c, fea_dim, c_interval, tokenizer)`
    actor (the module docstring has the equations): `lstm` (input 4L, hidden H), `output_net`
    (H → V), `x_to_c` (fea_dim → H), `constval_net` (H → K).

    `actor(x, fix_action=None, require_entropy=False, *, key=None)` on states x [B, fea_dim]:
    without `fix_action` samples update rules with `key` on the host (`generate`; not traceable) and
    returns `(rule, log_prob [B][, entropy [B]])`; with an `UpdateRule` it scores it (traceable, one
    scan) and returns `(fix_action, log_prob[, entropy])`.
    """

    def __init__(self, max_layer: int = 6, hidden_dim: int = 16, num_layers: int = 1, max_c: float = 1.0,
                 min_c: float = -1.0, fea_dim: int = 9, c_interval: float = 0.4, *, rngs: nnx.Rngs):
        self.max_layer, self.hidden_size, self.num_layers = max_layer, hidden_dim, num_layers
        self.max_c, self.min_c, self.interval, self.fea_size = max_c, min_c, c_interval, fea_dim
        self.seq_len, self.output_size = tree_slots(max_layer), len(VOCAB)
        self.num_c = constant_classes(max_c, min_c, c_interval)
        if self.num_c < 1:
            raise ValueError(f"(max_c - min_c) // c_interval must be at least 1, got {self.num_c}")
        self.lstm = LSTM(self.seq_len * CODE_LEN, hidden_dim, num_layers, rngs=rngs)
        self.output_net = torch_linear(hidden_dim, self.output_size, rngs=rngs)
        self.x_to_c = torch_linear(fea_dim, hidden_dim, rngs=rngs)
        self.constval_net = torch_linear(hidden_dim, self.num_c, rngs=rngs)

    # -- the pieces ------------------------------------------------------------------------

    def initial_carry(self, x):
        """(h_0, c_0) [num_layers, B, H]: h_0 = 0, c_0 = x_to_c(x) on every layer."""
        check_input("state", x, 2, self.fea_size, "[batch, fea_dim]")
        c0 = self.x_to_c(x)
        return jnp.zeros((self.num_layers, *c0.shape), c0.dtype), jnp.broadcast_to(c0, (self.num_layers, *c0.shape))

    def distributions(self, u, carry, mask):
        """One step: `(π_t, κ_t, carry')` from the tree input u [B, 4L], (h, c) and the mask [B, V]."""
        out, h, c = self.lstm.step(u, *carry)
        logits = jnp.where(mask, self.output_net(out), -jnp.inf)
        tokens = torch_categorical(jax.nn.softmax(logits, axis=-1))
        consts = torch_categorical(jax.nn.softmax(self.constval_net(out), axis=-1))
        return tokens, consts, (h, c)

    def step(self, carry, u, mask, key):
        """One sampling step (traceable): `(token [B], const_class [B], carry')`; masked tokens are never drawn."""
        tokens, consts, carry = self.distributions(u, carry, mask)
        k1, k2 = jax.random.split(key)
        token = jax.random.categorical(k1, jnp.where(mask, tokens.logits, -jnp.inf), axis=-1)
        return token, jax.random.categorical(k2, consts.logits, axis=-1), carry

    def log_prob_entropy(self, x, rule: UpdateRule):
        """(log π(rule | x) [B], H(x) [B]) of recorded rules, one `lax.scan` over the L steps (traceable)."""
        L, V = self.seq_len, self.output_size
        b = x.shape[0]
        expect = {"tokens": (b, L), "positions": (b, L), "masks": (b, L, V), "constants": (b, L), "valid": (b, L)}
        for name, shape in expect.items():
            got = tuple(jnp.shape(getattr(rule, name)))
            if got != shape:
                raise ValueError(f"fix_action.{name} must have shape {shape} (batch, L = {L} slots, V = {V} "
                                 f"tokens), got {got}")
        h, c = self.initial_carry(x)
        lstm, out_net, c_net = self.lstm, self.output_net, self.constval_net
        consts = jnp.asarray(CONSTS)
        bits = (jnp.arange(V)[:, None] + 1) >> (CODE_LEN - 1 - jnp.arange(CODE_LEN))[None, :] & 1  # [V, 4]

        def one(carry, xs):
            h, c, u = carry
            token, slot, mask, klass, valid = xs
            out, h, c = lstm.step(u.reshape(b, L * CODE_LEN), h, c)
            mask = mask | ~valid[:, None]  # padded steps: any finite distribution, contributing 0
            tok = torch_categorical(jax.nn.softmax(jnp.where(mask, out_net(out), -jnp.inf), axis=-1))
            con = torch_categorical(jax.nn.softmax(c_net(out), axis=-1))
            is_const = jnp.isin(token, consts)
            logp = tok.log_prob(token) + jnp.where(is_const, con.log_prob(klass), 0.0)
            ent = tok.entropy() + tok.probs[:, consts].sum(-1) * con.entropy()
            code = jax.nn.one_hot(slot, L, dtype=u.dtype)[:, :, None] * bits[token][:, None, :].astype(u.dtype)
            u = u + jnp.where(valid[:, None, None], code, 0.0)
            return (h, c, u), (jnp.where(valid, logp, 0.0), jnp.where(valid, ent, 0.0))

        u0 = jnp.zeros((b, L, CODE_LEN), h.dtype)
        xs = tuple(jnp.swapaxes(jnp.asarray(a), 0, 1) for a in (rule.tokens, rule.positions, rule.masks,
                                                                rule.constants, rule.valid))
        _, (logp, ent) = jax.lax.scan(one, (h, c, u0), xs)
        return logp.sum(0), ent.sum(0)

    # -- MetaBox's call ----------------------------------------------------------------------

    def __call__(self, x, fix_action=None, require_entropy=False, *, key=None):
        x = jnp.asarray(x)
        check_input("state", x, 2, self.fea_size, "[batch, fea_dim]")
        if fix_action is None:
            if key is None:
                raise ValueError("SYMBOLActor: sampling needs key= (a jax.random key) when fix_action is None")
            graph, weights = nnx.split(self)
            step = _compiled_step(graph)
            fix_action = generate(lambda carry, u, mask, k: step(weights, carry, u, mask, k), self.initial_carry(x),
                                  x.shape[0], key, self.max_layer)
        elif not isinstance(fix_action, UpdateRule):
            raise ValueError(f"fix_action must be an UpdateRule (what sampling records), got "
                             f"{type(fix_action).__name__}")
        logp, ent = self.log_prob_entropy(x, fix_action)
        return (fix_action, logp, ent) if require_entropy else (fix_action, logp)

    def _torch_layout(self):
        return [("lstm", self.lstm), ("output_net", self.output_net), ("x_to_c", self.x_to_c),
                ("constval_net", self.constval_net)]


@functools.lru_cache(maxsize=8)
def _compiled_step(graph):
    """`SYMBOLActor.step` compiled once per actor structure, the weights an argument."""
    return jax.jit(lambda weights, carry, u, mask, key: nnx.merge(graph, weights).step(carry, u, mask, key))


class SYMBOLCritic(nnx.Module):
    """SYMBOL's `Critic(fea_dim, value_dim)`: v = squeeze(value_net(x)) → `(stop_gradient(v), v)`, [B]
    ([] when B = 1, torch's squeeze). torch names `value_net.weight`, `value_net.bias`."""

    def __init__(self, fea_dim: int = 9, value_dim: int = 1, *, rngs: nnx.Rngs):
        self.input_dim, self.output_dim = fea_dim, value_dim
        self.value_net = torch_linear(fea_dim, value_dim, rngs=rngs)

    def __call__(self, x):
        x = jnp.asarray(x)
        check_input("state", x, 2, self.input_dim, "[batch, fea_dim]")
        v = jnp.squeeze(self.value_net(x))
        return jax.lax.stop_gradient(v), v

    def _torch_layout(self):
        return [("value_net", self.value_net)]
