"""Same settings, same science? jppo's RLEPSO against MetaBox's own, on MetaBox's difficult bbob-10D split.

MetaBox's shipped RLEPSO (metaevobox 2.0.2, model/bbob-10D/difficult/RLEPSO.pkl) trained on F1, F2, F3, F5,
F15, F16, F17, F21 for 14400 learning steps (30 epochs of 8 batch episodes × 16 envs, 'single' batching,
lr 1e-5). One module per section of the report, in its order:

* `s1_pretrained`: the pretrained policy on the 16 test problems, 51 runs each, jppo's env vs MetaBox's.
* `s2_trained`: jppo trained with MetaBox's settings and batching, against RLEPSO.pkl, and how far each
  policy moved; `s2_cause`: MetaBox's training loop against the corrected one, which explains the difference.
* `s3_curves`: training curves several ways on the same split.
* `s4_wallclock`: wall-clock of each way.
* `s5_whole_budget`: MetaBox's whole budget from one start, each way's final policy on the test problems.

`setting` holds the scale and what every section runs on, `policies` and `evaluate` what several share,
`figure` lays out the sections' panels, `runner` runs the study into a summary and draws the report from it.
MetaBox's parts need metaevobox and torch importable (`benchmarks.metabox_side`); without them they are
skipped with a line.
"""
