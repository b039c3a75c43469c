"""Supervised fine-tuning (SFT) on Ray Train: data rendering and tokenisation (:mod:`.chat`,
:mod:`.data`), the paper's recipe (:mod:`.config`), the Ray Train loop (:mod:`.ray_train`),
checkpoints (:mod:`.checkpoint`), export to Hugging Face format (:mod:`.export`) and metrics
(:mod:`.metrics`). See docs/sft.md."""
