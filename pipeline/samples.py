"""Sample textbooks the project generates itself (``parse.input: builtin:sample-textbooks``).

Five short books, one per subject, written for this project (no copied text): explanatory
paragraphs and worked examples with solutions, so every stage has something real to chew on. The
pages carry a running header and page numbers (the clean-up removes them), and the chemistry book
has one image-only page (a "scan") that only OCR can read. The text sticks to Latin-1 because
PDF's built-in Helvetica has no glyphs beyond it (× is fine, ≈ is not).
"""

from __future__ import annotations

from pathlib import Path

BOOKS: dict[str, dict] = {
    "physics_sample_mechanics.pdf": {
        "header": "SAMPLE MECHANICS - KINEMATICS AND ENERGY",
        "pages": [
            "1.1 Motion with constant acceleration\n\n"
            "When the acceleration a of a body is constant, its velocity changes by the same amount in "
            "every second: v = v0 + a t. Its position follows x = x0 + v0 t + a t^2 / 2. Eliminating "
            "the time gives v^2 = v0^2 + 2 a (x - x0), which is handy when the duration is unknown.\n\n"
            "Example 1.1. A car starts from rest and accelerates uniformly at 3.0 m/s^2 for 8.0 s. "
            "How far does it travel, and how fast is it moving at the end?\n\n"
            "Solution. With v0 = 0, the distance is x = a t^2 / 2 = 3.0 × 64 / 2 = 96 m. The final "
            "speed is v = a t = 3.0 × 8.0 = 24 m/s.",
            "1.2 Projectiles\n\n"
            "A projectile moves with constant horizontal velocity while gravity accelerates it "
            "downward at g = 9.8 m/s^2. The two motions are independent, so the time of flight is "
            "set by the vertical motion alone.\n\n"
            "Example 1.2. A stone is thrown horizontally at 12 m/s from the top of a cliff 20 m high. "
            "How far from the foot of the cliff does it land?\n\n"
            "Solution. The fall takes t = sqrt(2h/g) = sqrt(40 / 9.8) about 2.02 s. In that time the "
            "stone moves x = v t = 12 × 2.02 about 24 m horizontally.",
            "1.3 Work and kinetic energy\n\n"
            "The work done by a constant force F along a displacement d is W = F d cos(theta). The "
            "work-energy theorem states that the net work equals the change of kinetic energy, "
            "W = delta K with K = m v^2 / 2.\n\n"
            "Example 1.3. A 2.0 kg block slides 5.0 m across a floor with a kinetic friction "
            "coefficient of 0.25. Starting at 6.0 m/s, what is its final speed?\n\n"
            "Solution. Friction does W = -mu m g d = -0.25 × 2.0 × 9.8 × 5.0 = -24.5 J. The initial "
            "kinetic energy is 36 J, so K = 11.5 J and v = sqrt(2K/m) about 3.4 m/s.",
        ],
    },
    "chem_sample_gases_and_rates.pdf": {
        "header": "SAMPLE CHEMISTRY - GASES AND RATES",
        "pages": [
            "2.1 The ideal gas law\n\n"
            "For a dilute gas, pressure, volume, amount and temperature are tied together by "
            "P V = n R T, with R = 8.314 J/(mol K). Real gases deviate at high pressure, where the "
            "volume of the molecules and their attractions matter.\n\n"
            "Example 2.1. What volume does 0.50 mol of nitrogen occupy at 300 K and 100 kPa?\n\n"
            "Solution. V = n R T / P = 0.50 × 8.314 × 300 / 100000 about 0.0125 m^3, that is 12.5 L.",
            "SCAN:2.2 Reaction rates\n\n"
            "The rate of a reaction usually grows with temperature. The Arrhenius equation "
            "k = A exp(-Ea / (R T)) relates the rate constant to the activation energy Ea. "
            "Doubling the rate for a ten degree rise near room temperature corresponds to an "
            "activation energy of about 50 kJ per mole.",
            "2.3 Equilibrium\n\n"
            "At equilibrium the forward and reverse rates are equal and the reaction quotient equals "
            "the equilibrium constant K. Le Chatelier's principle predicts the response to a "
            "disturbance: the system shifts to partly undo it.\n\n"
            "Example 2.3. For N2 + 3 H2 <=> 2 NH3, which way does the equilibrium shift when the "
            "pressure is raised by compressing the mixture?\n\n"
            "Solution. Four moles of gas react to give two, so compression favours the side with "
            "fewer moles: the equilibrium shifts toward ammonia.",
        ],
    },
    "bio_sample_population_genetics.pdf": {
        "header": "SAMPLE BIOLOGY - POPULATION GENETICS",
        "pages": [
            "3.1 Hardy-Weinberg equilibrium\n\n"
            "In a large, randomly mating population without selection, mutation or migration, the "
            "allele frequencies p and q = 1 - p stay constant, and the genotype frequencies settle "
            "at p^2, 2pq and q^2 after one generation.\n\n"
            "Example 3.1. In a population, 16% of individuals show a recessive trait. What fraction "
            "are heterozygous carriers?\n\n"
            "Solution. q^2 = 0.16, so q = 0.4 and p = 0.6. Carriers make up 2pq = 2 × 0.6 × 0.4 = "
            "0.48, that is 48% of the population.",
            "3.2 Natural selection\n\n"
            "Selection changes allele frequencies when genotypes differ in survival or "
            "reproduction. A recessive harmful allele is removed slowly once it is rare, because "
            "most copies hide in heterozygotes where selection cannot see them.",
        ],
    },
    "econ_sample_markets.pdf": {
        "header": "SAMPLE ECONOMICS - MARKETS",
        "pages": [
            "4.1 Price elasticity of demand\n\n"
            "The price elasticity of demand measures how strongly the quantity demanded responds to "
            "price: the percentage change in quantity divided by the percentage change in price. "
            "Demand is elastic when the absolute value exceeds one.\n\n"
            "Example 4.1. When the price of a concert ticket rises from 40 to 50 dollars, sales fall "
            "from 1,000 to 800 tickets. Using the midpoint method, is demand elastic?\n\n"
            "Solution. The quantity changes by -200 / 900 about -22.2% and the price by 10 / 45 about "
            "22.2%, so the elasticity is about -1.0: demand is unit elastic, and revenue is "
            "unchanged (40,000 dollars in both cases).",
            "4.2 Market equilibrium\n\n"
            "Example 4.2. Demand is Qd = 100 - 2P and supply is Qs = 20 + 2P. Find the equilibrium "
            "price and quantity.\n\n"
            "Solution. Setting 100 - 2P = 20 + 2P gives P = 20 and Q = 60.",
        ],
    },
    "math_sample_probability.pdf": {
        "header": "SAMPLE PROBABILITY - COUNTING AND CHANCE",
        "pages": [
            "5.1 Counting\n\n"
            "The number of ways to choose k objects from n without regard to order is the binomial "
            "coefficient C(n, k) = n! / (k! (n - k)!).\n\n"
            "Example 5.1. A committee of 3 is chosen at random from 5 women and 4 men. What is the "
            "probability that it has exactly 2 women?\n\n"
            "Solution. There are C(9, 3) = 84 committees, of which C(5, 2) × C(4, 1) = 10 × 4 = 40 "
            "have two women, so the probability is 40 / 84 = 10 / 21 about 0.476.",
            "5.2 Expectation\n\n"
            "The expected value of a discrete random variable is the sum of its values weighted by "
            "their probabilities. Expectation is linear: E[X + Y] = E[X] + E[Y] even when X and Y "
            "are dependent.\n\n"
            "Theorem 5.2. For a fair six-sided die, the expected value of the sum of n rolls is "
            "3.5 n. Proof: each roll has expectation (1 + 2 + ... + 6) / 6 = 3.5, and linearity adds "
            "them.",
        ],
    },
}


def write_sample_textbooks(folder: str | Path) -> Path:
    """Write the sample books (and a manifest naming their subjects and licence) into ``folder``."""
    import pymupdf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, book in BOOKS.items():
        doc = pymupdf.open()
        for number, text in enumerate(book["pages"], start=1):
            page = doc.new_page(width=612, height=792)
            if text.startswith("SCAN:"):
                _insert_scanned(doc, page, text.removeprefix("SCAN:"))
            else:
                page.insert_text((72, 42), book["header"], fontsize=8)
                page.insert_textbox(pymupdf.Rect(72, 80, 540, 720), text, fontsize=11)
            page.insert_text((300, 765), str(number), fontsize=9)
        # Fixed dates and no fresh /ID: the same bytes every time, so doc_ids are stable.
        doc.set_metadata(
            {"title": book["header"].title(), "author": "MegaScience-on-Ray samples",
             "creationDate": "D:20260101000000Z", "modDate": "D:20260101000000Z"}
        )  # fmt: skip
        doc.save(folder / name, no_new_id=True, garbage=3, deflate=True)
        doc.close()
    lines = ["path,subject,licence,title"]
    subjects = {
        "physics": "physics",
        "chem": "chemistry",
        "bio": "biology",
        "econ": "economics",
        "math": "math",
    }
    for name, book in BOOKS.items():
        lines.append(
            f"{name},{subjects[name.split('_')[0]]},CC0-1.0,{book['header'].split(' - ')[0].title()}"
        )
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder


def _insert_scanned(doc, page, text: str) -> None:
    """Render ``text`` to a picture and place only the picture: a page without a text layer."""
    import pymupdf

    scratch = pymupdf.open()
    draft = scratch.new_page(width=612, height=792)
    draft.insert_textbox(pymupdf.Rect(72, 80, 540, 720), text, fontsize=12)
    pixmap = draft.get_pixmap(dpi=150)
    scratch.close()
    page.insert_image(page.rect, pixmap=pixmap)
