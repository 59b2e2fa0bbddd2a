"""What a training step costs under each gradient estimator (`config.model.gradient`): the
paper's reparameterization gradient against DReG for the IWAE bound and "sticking the landing"
for the K-sample ELBO, on the same model and machine.

    python -m benchmarks.gradient_estimators --config=configs/hvae.py:k=50 --steps=100 --repeats=5

For each objective (iwae, vae) and gradient: XLA's FLOP count of one compiled step (its cost
analysis, which a busy machine does not change) and the best seconds of `--steps` steps of the
real compiled epoch (`epoch.make_train_epoch`: shuffling, dynamic binarization, Adam; one call per
repeat), the programs timed in turn so that they share the clock's drift. Ratios are against the
same objective's reparameterization gradient. Synthetic MNIST-sized uint8 images (speed does not
depend on the pixels).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from absl import flags

from autoencoders import epoch, models, optim
from autoencoders.launch import resolve_config
from autoencoders.models import iwae
from benchmarks import report, timing
from benchmarks.architectures import IMAGE_SHAPE
from benchmarks.datasets import BenchData, synthetic_data
from benchmarks.measure import xla_flops
from experiments import cli

NUM_TRAIN = 2000  # synthetic training images; the epoch draws its minibatches from them


def _program(config_arg: str, steps: int, bench: BenchData) -> tuple[Callable[[], None], float]:
    """(one call of the compiled `steps`-step epoch, its state carried from call to call; XLA's
    FLOPs of one step)."""
    config = resolve_config([f"--config={config_arg}"])
    model = models.make(config, bench.spec)
    tx = optim.make(config.optimizer, steps_per_epoch=steps, num_epochs=1)
    batch = config.train.batch_size
    example = {"x": jnp.zeros((batch, *bench.spec.shape)), "y": jnp.zeros((batch,), jnp.int32)}
    state = jax.jit(lambda key: model.init_state(key, example, tx))(jax.random.key(0))
    images = jax.ShapeDtypeStruct((batch, *bench.spec.shape), jnp.uint8)
    labels = jax.ShapeDtypeStruct((batch,), jnp.int32)
    one_step = jax.jit(epoch.make_train_epoch(model, tx, config, 1, compiled=False))
    flops = xla_flops(one_step, state, images, labels, jax.random.key(0))
    train, key = bench.train, jax.random.key(1)
    compiled = epoch.make_train_epoch(model, tx, config, steps)
    compiled = compiled.lower(state, train.images, train.labels, key).compile()
    carried = [state]

    def call() -> None:
        carried[0], metrics = compiled(carried[0], train.images, train.labels, key)
        jax.block_until_ready(metrics)

    return call, flops


def estimator_table(config: str, steps: int, repeats: int) -> report.Table:
    path, _, arg = config.partition(":")
    bench = synthetic_data(IMAGE_SHAPE, NUM_TRAIN, 1, "speed does not depend on the pixels")
    calls, flops = {}, {}
    for objective in iwae.OBJECTIVES:
        for gradient in iwae.GRADIENTS:
            overrides = ",".join(filter(None, [arg, f"objective={objective},gradient={gradient}"]))
            calls[objective, gradient], flops[objective, gradient] = _program(
                f"{path}:{overrides}", steps, bench
            )
    best = timing.interleaved_best_seconds(calls, repeats)
    table = report.Table(
        f"Gradient estimators: {config}",
        ["objective", "gradient", "GFLOP/step (XLA)", "× FLOPs", "ms/step", "× time"],
    )
    for objective, gradient in calls:
        name, base = (objective, gradient), (objective, iwae.GRADIENTS[0])
        table.add(
            objective,
            gradient,
            flops[name] / 1e9 if flops[name] else None,
            flops[name] / flops[base] if flops[name] and flops[base] else None,
            1e3 * best[name] / steps,
            best[name] / best[base],
        )
    table.notes.append(
        f"{bench.description}; batch as configured; {steps} steps per call, best of {repeats} "
        "calls each, timed in turn after a warm-up call; × against the same objective's "
        "reparameterization gradient"
    )
    return table


def main(argv: Sequence[str]) -> None:
    cli.no_stray_arguments(argv)
    print(estimator_table(flags.FLAGS.config, flags.FLAGS.steps, flags.FLAGS.repeats).to_markdown())


if __name__ == "__main__":
    flags.DEFINE_string("config", "configs/hvae.py:k=50", "a config of the iwae or hvae family")
    flags.DEFINE_integer("steps", 100, "training steps per timed call", lower_bound=1)
    flags.DEFINE_integer("repeats", 5, "timed calls of each program", lower_bound=1)
    cli.run(main)
