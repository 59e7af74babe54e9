#!/bin/bash
# Run only with nothing else on the machine. Writes JSON under benchmarks/results/dreamer_speed/.
cd /work/main
OUT=benchmarks/results/dreamer_speed
uptime | tee $OUT/amp_load_before.txt
.venv/bin/python benchmarks/dreamer_vs_sheeprl.py --shapes cpu --reps 3 --steps 3 --threads 2 --amp \
    --sheeprl-precision bf16-mixed --json $OUT/cpu_shapes_amp.json 2>&1 | tee $OUT/cpu_shapes_amp.log
.venv/bin/python benchmarks/dreamer_vs_sheeprl.py --shapes paper --reps 2 --steps 2 --threads 2 --amp \
    --sheeprl-precision bf16-mixed --json $OUT/paper_shapes_amp.json 2>&1 | tee $OUT/paper_shapes_amp.log
uptime | tee $OUT/amp_load_after.txt
