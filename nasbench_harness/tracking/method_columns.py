"""The method-state columns of the trajectory (a component's ``state_columns()``), with the
methods writing them: :mod:`nasbench_harness.tracking.schema` lists them under ``scope="method"``.
Kept apart from the engine's columns because every method adds its own. No torch import."""

from __future__ import annotations

MethodColumn = tuple[str, str, str, str]
"""(name, unit, meaning, the methods writing it)."""


def _m(name: str, unit: str, meaning: str, methods: str) -> MethodColumn:
    return (name, unit, meaning, methods)


METHOD_COLUMNS: tuple[MethodColumn, ...] = (
    _m(
        "es_eigenvalue",
        "",
        """the measurement the early-stopping rule decides on, as R-DARTS's code: the largest eigenvalue of the
Hessian of the arch loss plus the arch L2 term (`arch_optim.weight_decay` on the diagonal) on the
epoch's last architecture batch (augmented, a different batch every epoch), after 1-based epochs 1,
3, 5, ... (`every`) and the last; null in other epochs""",
        "darts-es, darts-ada",
    ),
    _m("es_local_avg", "", "newest local average of `es_eigenvalue`", "darts-es, darts-ada"),
    _m("es_growth", "", "`es_local_avg`'s ratio to the one `delta` measurements back", "darts-es, darts-ada"),
    _m("weight_decay", "", "the weight decay in force", "darts-ada, rdarts-l2"),
    _m("ada_adaptations", "", "rollbacks so far", "darts-ada"),
    _m("drop_prob", "", "ScheduledDropPath probability of the epoch", "rdarts-dp"),
    _m(
        "reg_<name>",
        "",
        """the regularizer's unweighted penalty at the epoch's last step of a phase it applies to (null in an
epoch whose weight is 0: not computed); runs written before the re-cut have `beta_reg` and
`zero_one_loss` instead""",
        "beta-darts (`reg_beta_decay`), fair-darts (`reg_zero_one`), `--regularizer` plugins",
    ),
    _m(
        "reg_<name>_weight",
        "",
        """the regularizer's weight in the epoch (a constant, or a `START:END` ramp); runs written before the
re-cut have `beta_weight` instead""",
        "beta-darts, fair-darts, `--regularizer` plugins",
    ),
    _m("aux_skip_beta", "", "the auxiliary skip connection's beta of the epoch", "darts-minus"),
    _m("sdarts_eps", "", "the perturbation's epsilon of the epoch", "sdarts-rs, sdarts-adv"),
    _m(
        "sdarts_adv_kept",
        "",
        """fraction of the epoch's weight steps whose adversarial perturbation was used""",
        "sdarts-adv",
    ),
    _m("gdas_tau", "", "the Gumbel-softmax temperature of the epoch", "gdas"),
    _m("snas_tau", "", "the Gumbel-softmax temperature of the epoch", "snas"),
    _m(
        "drnas_reg",
        "",
        """the Dirichlet concentration regularizer R of the alphas at the end of the epoch, unscaled (KL in
nats, or `\\|alpha\\|^2 / 2`)""",
        "drnas",
    ),
    _m("pc_k", "", "the partial-channel factor K", "pc-darts"),
    _m(
        "pc_edge_weights",
        "",
        """NB201 only: the six edge weights softmax(beta) per node after the epoch, comma-separated in edge
order 0->1, 0->2, 1->2, 0->3, 1->3, 2->3 (the 0->1 weight is always 1)""",
        "pc-darts",
    ),
    _m("sp_tau", "", "the epoch's sparse temperature", "sp-darts"),
    _m("sp_dense_tau", "", "the epoch's dense temperature", "sp-darts"),
    _m(
        "sp_sparse_prob",
        "",
        """C_t, the probability of the sparse temperature per step (0 in warm-up)""",
        "sp-darts",
    ),
    _m("sp_sparse_fraction", "", "share of the epoch's steps that used the sparse temperature", "sp-darts"),
    _m("single_stage_frozen", "", "the architecture is frozen after this epoch", "single-stage"),
    _m("single_stage_tau", "", "the Gumbel temperature of the epoch (tau_min once frozen)", "single-stage"),
    _m(
        "single_stage_entropy",
        "nats",
        """sum over groups of H(softmax(alpha)), the entropy penalty's H""",
        "single-stage",
    ),
    _m(
        "rsws_best_oneshot_acc",
        "%",
        """one-shot accuracy of the chosen candidate on the ranking images""",
        "rsws",
    ),
    _m(
        "enas_baseline",
        "",
        """the REINFORCE baseline carried into the next epoch's controller training: the epoch's last
sample's (in the first epoch its top-1 accuracy as a fraction, as ENAS.py sets it)""",
        "enas",
    ),
    _m(
        "enas_reward",
        "",
        "mean reward (top-1 fraction + entropy bonus) of the epoch's controller samples",
        "enas",
    ),
    _m(
        "enas_entropy",
        "nats",
        "mean entropy of the epoch's controller samples, summed over edges (6 ln 5 = 9.66 when uniform)",
        "enas",
    ),
    _m(
        "enas_best_oneshot_acc",
        "%",
        """one-shot accuracy of the chosen controller sample on its own search-valid batch""",
        "enas",
    ),
    _m(
        "setn_best_oneshot_acc",
        "%",
        """one-shot accuracy of the chosen candidate (of the most probable cells) on its own batch""",
        "setn",
    ),
    _m(
        "setn_best_log_prob",
        "nats",
        """the chosen candidate's log-probability under softmax(alpha), summed over edges""",
        "setn",
    ),
    _m(
        "setn_best_rank",
        "",
        """the chosen candidate's place among the candidates by probability (1: the most probable cell)""",
        "setn",
    ),
)
