"""MetaBBO in JAX: the BBOB suite, optimizer environments an agent steers (RLEPSO, GLEET), the
MetaBox presets and the evaluation report.

Modules are imported on use (`jppo.metabbo.rlepso`, `jppo.metabbo.bbob`, ...): importing this
package costs nothing, so the registry and the presets can name its envs without loading them.
"""
