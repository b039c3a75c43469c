"""A small benchmark shelf written for this project (``builtin:sample-benchmarks``).

The real benchmark files are not redistributed with the project. So that decontamination and
evaluation run end to end on a fresh clone (the quickstart), this module writes six files in the
reference schemas (SPEC-pipeline §15) with questions we wrote ourselves: GSM8K, MATH500,
GPQA-Diamond, PIQA, MedQA and SciBench (physics, chemistry, math), five items each. Point ``data_dir`` /
``benchmarks_dir`` at the real files (``$MEGASCIENCE_BENCHMARKS``) for real numbers; reports on
the samples say which benchmarks are missing, as they would for any partial shelf.
"""

from __future__ import annotations

import json
from pathlib import Path

GSM8K = [
    ("A baker makes 24 rolls and sells them in bags of 4. She sells 5 bags. How many rolls are left?",
     "4", "24 / 4 = 6 bags. 6 - 5 = 1 bag is left, which holds 4 rolls."),
    ("Tom reads 12 pages a day for 5 days and 20 pages on the sixth day. How many pages did he read?",
     "80", "12 * 5 = 60 pages, plus 20 makes 80."),
    ("A ticket costs $7. A family buys 3 adult tickets and 2 child tickets at half price. What do they pay?",
     "28", "3 * 7 = 21 and 2 * 3.5 = 7, so 21 + 7 = 28."),
    ("A tank holds 150 liters and is 40% full. How many liters must be added to fill it?",
     "90", "40% of 150 is 60 liters, so 150 - 60 = 90 liters are missing."),
    ("Mia walks 3 km to school and back every weekday. How many km does she walk in two weeks?",
     "60", "6 km a day for 10 weekdays is 60 km."),
]  # fmt: skip

MATH500 = [
    ("What is the remainder when $2^{10}$ is divided by $7$?", "2",
     "$2^3 = 8 \\equiv 1 \\pmod 7$, so $2^{10} = (2^3)^3 \\cdot 2 \\equiv 2$. The answer is $\\boxed{2}$."),
    ("Solve for $x$: $3x - 7 = 11$.", "6", "$3x = 18$, so $x = \\boxed{6}$."),
    ("Compute $\\binom{6}{2}$.", "15", "$\\binom{6}{2} = \\frac{6 \\cdot 5}{2} = \\boxed{15}$."),
    ("Simplify $\\sqrt{50}$.", "5\\sqrt{2}", "$\\sqrt{50} = \\sqrt{25 \\cdot 2} = \\boxed{5\\sqrt{2}}$."),
    ("What is the sum of the interior angles of a hexagon, in degrees?", "720",
     "$(6 - 2) \\cdot 180 = \\boxed{720}$."),
]  # fmt: skip

GPQA = [
    ("A photon has a wavelength of 500 nm. Which is closest to its energy?", "2.5 eV", ["0.25 eV", "25 eV", "250 eV"],
     "Physics", "Quantum Mechanics"),
    ("Which reagent converts a primary alcohol to an aldehyde without over-oxidation?", "PCC",
     ["KMnO4 in hot acid", "Jones reagent in excess", "Concentrated nitric acid"], "Chemistry", "Organic Chemistry"),
    ("A gene shows incomplete dominance. Crossing two heterozygotes gives which phenotype ratio?", "1:2:1",
     ["3:1", "9:3:3:1", "1:1"], "Biology", "Genetics"),
    ("What is the escape velocity from a body of mass M and radius R?", "sqrt(2GM/R)",
     ["sqrt(GM/R)", "2GM/R", "GM/R^2"], "Physics", "Astrophysics"),
    ("Which quantity is conserved in an elastic collision but not in an inelastic one?", "Kinetic energy",
     ["Momentum", "Mass", "Charge"], "Physics", "Physics (general)"),
]  # fmt: skip

PIQA = [
    ("Keep bread from going stale quickly.", "Store it in a sealed bag at room temperature.",
     "Leave it uncovered on the counter.", 0),
    ("Cool a hot drink faster.", "Cover it with a thick lid.", "Pour it into a wide, shallow cup.", 1),
    ("Loosen a tight jar lid.", "Run the lid under hot water.", "Put the jar in the freezer.", 0),
    ("Dry wet shoes overnight.", "Seal them in a plastic box.", "Stuff them with newspaper.", 1),
    ("Find a small leak in a bike tube.", "Submerge the inflated tube in water and look for bubbles.",
     "Shake the tube next to your ear.", 0),
]  # fmt: skip

MEDQA = [
    ("A 25-year-old presents with polyuria, polydipsia and weight loss. Fasting glucose is 260 mg/dL. "
     "Which hormone is deficient?", {"A": "Insulin", "B": "Glucagon", "C": "Cortisol", "D": "Thyroxine"}, "A"),
    ("A patient on warfarin has an INR of 9 and active bleeding. Which is the most appropriate treatment?",
     {"A": "Aspirin", "B": "Vitamin K and prothrombin complex concentrate", "C": "Heparin", "D": "Observation"}, "B"),
    ("Which vitamin deficiency causes scurvy?", {"A": "Vitamin A", "B": "Vitamin D", "C": "Vitamin C",
                                                 "D": "Vitamin K"}, "C"),
    ("A child has a barking cough and inspiratory stridor. What is the most likely diagnosis?",
     {"A": "Croup", "B": "Asthma", "C": "Pneumonia", "D": "Bronchiolitis"}, "A"),
    ("Which drug class is first-line for an uncomplicated hypertension in a patient with diabetes?",
     {"A": "Beta blockers", "B": "ACE inhibitors", "C": "Loop diuretics", "D": "Alpha blockers"}, "B"),
]  # fmt: skip

SCIBENCH = [
    ("A ball is dropped from rest from a height of 20 m. How long does it take to reach the ground? "
     "Use $g = 9.8 \\mathrm{~m/s^2}$.", "2.02", " $\\mathrm{~s}$"),
    ("A 2 kg mass moves at 3 m/s. What is its kinetic energy?", "9", " $\\mathrm{~J}$"),
    ("A spring with constant 200 N/m is compressed by 0.1 m. What energy does it store?", "1", " $\\mathrm{~J}$"),
    ("What is the period of a pendulum 1 m long? Use $g = 9.8 \\mathrm{~m/s^2}$.", "2.01", " $\\mathrm{~s}$"),
    ("A car accelerates from 0 to 27 m/s in 9 s. What is its acceleration?", "3", " $\\mathrm{~m/s^2}$"),
]  # fmt: skip


SCIBENCH_CHEMISTRY = [
    ("How many moles are in 36 g of water? The molar mass of water is 18 g/mol.", "2", " $\\mathrm{~mol}$"),
    ("What is the pH of a 0.01 M HCl solution?", "2", " "),
    ("An ideal gas occupies 10 L at 300 K. What is its volume at 450 K and the same pressure?", "15", " $\\mathrm{~L}$"),
    ("A first-order reaction has a rate constant of 0.0693 per minute. What is its half-life?", "10",
     " $\\mathrm{~min}$"),
    ("How much heat raises 100 g of water by 10 K? Use 4.18 J/(g K).", "4180", " $\\mathrm{~J}$"),
]  # fmt: skip

SCIBENCH_MATH = [
    ("A fair die is rolled twice. What is the probability that the sum is 7?", "0.1667", " "),
    ("Solve $y' = 2y$ with $y(0) = 3$ and give $y(1)$.", "22.17", " "),
    ("What is the variance of a Bernoulli variable with p = 0.3?", "0.21", " "),
    ("Evaluate the integral of $x^2$ from 0 to 3.", "9", " "),
    ("A sample has values 2, 4, 6, 8. What is its mean?", "5", " "),
]  # fmt: skip


def write_sample_benchmarks(folder: str | Path) -> Path:
    """Write the sample benchmark files into ``folder`` (reference file names and schemas)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def jsonl(name: str, rows: list[dict]) -> None:
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    def json_list(name: str, rows: list[dict]) -> None:
        (folder / name).write_text(json.dumps(rows, indent=1))

    jsonl("gsm8k.jsonl", [
        {"question": q, "answer": a, "cot": c, "id": f"sample-gsm8k-{i}"} for i, (q, a, c) in enumerate(GSM8K)
    ])  # fmt: skip
    jsonl("math500.jsonl", [
        {"problem": p, "solution": s, "answer": a, "subject": "Prealgebra", "level": 2,
         "unique_id": f"sample/math/{i}.json"}
        for i, (p, a, s) in enumerate(MATH500)
    ])  # fmt: skip
    json_list("gpqa_diamond.json", [
        {"Question": q, "Correct Answer": right, "Incorrect Answer 1": wrong[0], "Incorrect Answer 2": wrong[1],
         "Incorrect Answer 3": wrong[2], "Explanation": "", "Subdomain": sub, "High-level domain": domain,
         "Record ID": f"sample{i}"}
        for i, (q, right, wrong, domain, sub) in enumerate(GPQA)
    ])  # fmt: skip
    json_list("piqa_valid.json", [
        {"goal": g, "sol1": s1, "sol2": s2, "label": str(label)} for g, s1, s2, label in PIQA
    ])  # fmt: skip
    jsonl("medqa_US.jsonl", [
        {"question": q, "answer": options[key], "options": options, "meta_info": "sample", "answer_idx": key}
        for q, options, key in MEDQA
    ])  # fmt: skip
    for subject, rows in (("physics", SCIBENCH), ("chemistry", SCIBENCH_CHEMISTRY), ("math", SCIBENCH_MATH)):
        json_list(f"scibench_{subject}.json", [
            {"solution": "", "problem_text": p, "answer_latex": a, "comment": " ", "answer_number": a,
             "problemid": f" Sample {i}", "unit": unit, "source": "sample", "subject": subject}
            for i, (p, a, unit) in enumerate(rows)
        ])  # fmt: skip
    (folder / "README.md").write_text(
        "Sample benchmark files written for MegaScience-on-Ray (not the real benchmarks): five items per "
        "file in the reference schemas. Set MEGASCIENCE_BENCHMARKS to the real files for real scores.\n"
    )
    return folder
