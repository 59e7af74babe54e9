"""The ``hello`` method's loop (imported only when a recipe runs it)."""

from xfer.recipe import Recipe
from xfer.run.context import RunContext


def run(recipe: Recipe, ctx: RunContext) -> None:
    assert recipe.target is not None
    env = ctx.make_env(recipe.target, seed=recipe.seed)
    env.action_space.seed(recipe.seed)
    for episode in range(recipe.config.episodes):
        env.reset(seed=int(ctx.rng.integers(2**31)))
        done, total = False, 0.0
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        ctx.logger.log(episode + 1, {"train/return": total}, env_steps=episode + 1)
    ctx.save(recipe.config.episodes, {"episodes": recipe.config.episodes})
