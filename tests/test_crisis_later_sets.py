"""Fresh long sets written since session 21, each scored once and then spent.

A writer told to open nothing of the project wrote each set to the brief of the sets before it
(600 messages: 300 crisis, 25 a category, and 300 near misses; half Spanish). Each was kept
read-only outside the repository, copied in byte for byte and scored once
(`python -m peerline.service.crisis --evaluate --no-dev --errors --heldout FILE`, verbatim in
docs/); its figures then are floors the line must keep. A set that changes silently measures
nothing: each file's SHA-256 is recorded here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from peerline.service.crisis import CrisisDetector
from peerline.service.crisis_eval import load, run, score

HERE = Path(__file__).parent
# The twenty-first set, scored at a543f95 (the line as session 20 left it):
# docs/crisis_heldout_run_set21.txt.
SET21 = HERE / "crisis_heldout21.yaml"
# The twenty-second and twenty-third, by two more writers, scored once at the freeze defedb4
# (after the twenty-first set's misses were written for): docs/crisis_heldout_run_set22.txt and
# docs/crisis_heldout_run_set23.txt.
SET22 = HERE / "crisis_heldout22.yaml"
SET23 = HERE / "crisis_heldout23.yaml"
# The twenty-fourth (a writer asked for teenagers' and young adults' slang), the same freeze:
# docs/crisis_heldout_run_set24.txt.
SET24 = HERE / "crisis_heldout24.yaml"
# The twenty-fifth (a writer asked to hide the risk harder), twenty-sixth (adults of 30 to 60)
# and twenty-seventh, scored once at the second freeze 9198657 (after the first freeze's sets
# were written for): docs/crisis_heldout_run_set25.txt to _set27.txt.
SET25 = HERE / "crisis_heldout25.yaml"
SET26 = HERE / "crisis_heldout26.yaml"
SET27 = HERE / "crisis_heldout27.yaml"
# The twenty-eighth and twenty-ninth (people who hide it), at the third freeze c26c24d:
# docs/crisis_heldout_run_set28.txt and _set29.txt.
SET28 = HERE / "crisis_heldout28.yaml"
SET29 = HERE / "crisis_heldout29.yaml"
# The thirtieth and thirty-first, at the session's last freeze 17021f6 (after the review's
# mends): docs/crisis_heldout_run_set30.txt and _set31.txt.
SET30 = HERE / "crisis_heldout30.yaml"
SET31 = HERE / "crisis_heldout31.yaml"
# Session 22: the thirty-second (people texting late at night, tired, many of them carers and
# shift workers of 40 to 70) and the thirty-third (people of 20 to 30 in their own idiom, many
# replies from mid-chat), scored once at 160f7f5, whose answers are session 21's (the session's
# changes to the check were for its speed): docs/crisis_heldout_run_set32.txt and _set33.txt.
SET32 = HERE / "crisis_heldout32.yaml"
SET33 = HERE / "crisis_heldout33.yaml"
# Two more, scored once at c0219cc (the same answers): the thirty-fourth (a story around the
# risk: work, money, papers, debts; the risky words in the middle or at the end of a long text)
# and the thirty-fifth (5 to 20 words, blunt or evasive, some in Spanglish): _set34.txt, _set35.
SET34 = HERE / "crisis_heldout34.yaml"
SET35 = HERE / "crisis_heldout35.yaml"
# The thirty-sixth (a particular person for each text, every age and region) and thirty-seventh
# (risk hidden or half-said; heavy but safe near misses), scored once at 43ce177 after the
# 32nd-35th sets' narrow families: _set36.txt and _set37.txt (`_start` beside: session 21's end).
SET36 = HERE / "crisis_heldout36.yaml"
SET37 = HERE / "crisis_heldout37.yaml"
# Session 23: the thirty-eighth (lives worn down: chronic pain, debt, grief, years of caring;
# 35 to 80) and the thirty-ninth (14 to 26, texting in a hurry: slang, emoji, Spanglish, heavy
# on Caribbean, US, Argentine and Chilean Spanish), scored once at 1f5783f (session 22's end):
# docs/crisis_heldout_run_set38.txt and _set39.txt.
SET38 = HERE / "crisis_heldout38.yaml"
SET39 = HERE / "crisis_heldout39.yaml"
# The fortieth (people texting a line for the first time, unsure of it, asking about the
# service; the writer noted many Spanish texts are close translations of English ones) and the
# forty-first (people who do not talk about feelings: trades, trucking, farms, veterans,
# police; terse and dry), scored once at 1f5783f (the session's commits before them change no
# answer): docs/crisis_heldout_run_set40.txt and _set41.txt.
SET40 = HERE / "crisis_heldout40.yaml"
SET41 = HERE / "crisis_heldout41.yaml"
# The forty-second (one night's traffic: every age and region, questions about the line in the
# same text, stories first) and the forty-third (English of the UK, Ireland, Australia, New
# Zealand and South Africa; Spanish of every region), scored once at 2afc66a (after the sixteen
# sure entries; the same answers at the session's start): _set42.txt and _set43.txt.
SET42 = HERE / "crisis_heldout42.yaml"
SET43 = HERE / "crisis_heldout43.yaml"
# The forty-fourth (the US South and Midwest; Spanish in the US and Mexico, code-switching),
# scored once at 8650f75 (the session's end; the same figures at its start): _set44.txt.
SET44 = HERE / "crisis_heldout44.yaml"
# Session 24: the forty-fifth (texts from where people are, often on the move: cars, buses,
# platforms, building sites, motels; Spanish of Central America, Venezuela and Colombia), the
# forty-sixth (risk told in practical terms: money, paperwork, pets, handovers; Spanish of the
# Caribbean, Spain and the Southern Cone) and the forty-seventh (15 to 35 and online: gamers,
# students, dark humour; Spanish of Spain, Argentina, Chile, Mexico and Peru), scored once at
# 587b955 (the model fitted on the spent sets 21-44): _set45.txt to _set47.txt, with the
# session-start detector (d497891) beside in _start files.
SET45 = HERE / "crisis_heldout45.yaml"
SET46 = HERE / "crisis_heldout46.yaml"
SET47 = HERE / "crisis_heldout47.yaml"
# Then three more writers for the same detector: the forty-eighth (55 to 90: widowed, ill,
# carers, care homes, veterans; Spanish of Spain and the Andes), the forty-ninth (people pushed
# to the edge: LGBTQ+, in recovery, out of prison, undocumented, sleeping in cars; Spanish of the
# border, Puerto Rico and the Dominican Republic) and the fiftieth (parents and carers; some
# texts very short, some long stories; Spanish of Colombia, Mexico, Argentina and Uruguay),
# scored once at 3d57a16 (the same answers as 587b955): _set48.txt to _set50.txt, _start beside.
SET48 = HERE / "crisis_heldout48.yaml"
SET49 = HERE / "crisis_heldout49.yaml"
SET50 = HERE / "crisis_heldout50.yaml"
# Then three more for the detector with the 48th-50th sets' families (4193f6d): the fifty-first
# (health and care work, illness, medicines at hand), the fifty-second (students and young
# workers of 16 to 30, first texts and replies mid-chat) and the fifty-third (men of 30 to 70
# who rarely talk about feelings: trades, the sea, mines, the army, farms): _set51.txt to
# _set53.txt, _start beside.
SET51 = HERE / "crisis_heldout51.yaml"
SET52 = HERE / "crisis_heldout52.yaml"
SET53 = HERE / "crisis_heldout53.yaml"
# The fifty-fourth (the first minutes and hours of a crisis, with times, places and objects;
# near misses from emergencies that are not self-harm), scored once at f2d0a58 (the 51st-53rd
# families): _set54.txt, _start beside.
SET54 = HERE / "crisis_heldout54.yaml"
# The fifty-fifth (rural places and small towns: ranches, boats, mines, oil fields, churches;
# Spanish of rural Mexico, the Andes, Patagonia, Galicia and Andalusia), scored once at 35d7e15
# (the re-read's mends): _set55.txt, _start beside.
SET55 = HERE / "crisis_heldout55.yaml"
# The fifty-sixth (session 26: the plainest, commonest first texts, a greeting or a request for
# a person and then plain words; near misses with the same openings), scored once at 1ea7936
# (the same answers as the session's start, c7683c2): _set56.txt, _start beside.
SET56 = HERE / "crisis_heldout56.yaml"
# The fifty-seventh (the same brief, another writer, a third of the texts 3 to 10 words), scored
# once at 1e0d161 (the 56th set's families and the plea for help set aside): _set57.txt, the
# session's start (c7683c2) in _start beside.
SET57 = HERE / "crisis_heldout57.yaml"

#: Each set's SHA-256 as written, and the crisis messages found and near misses alarmed (of
#: 300 each) when it was scored.
LATER_SETS = {
    SET21: ("84e9ff335abc2985415c457827fd18e70d08061cc9a2ffa2626dcf092c3728df", (290, 16)),
    SET22: ("ad059cd80767818d7c5938dfb6ffa5262d7f86625e2dc13c1b2b8f36ebf7a682", (288, 13)),
    SET23: ("cc2acf45cf1f33ff9c5a6eed3ec787fa8c92158be831d24c16ecc0fc64fe94b7", (288, 12)),
    SET24: ("1e946c310d55123ba496f3e7dfdfad03e6eff37c7efb32ff5d9f0f4dab893e16", (275, 21)),
    SET25: ("d6b6c19df6856eefeb151e52b3b6622c48056501ad703c81f02ec39847ba6ece", (266, 18)),
    SET26: ("5658884287172b735e318d2f055f683180729cf0b29799f4df4e70efc85045f4", (283, 13)),
    SET27: ("98788755fb4b4d15745762ceae63be4dc84543eeeaa8f60cb983ae1103e73b89", (274, 19)),
    SET28: ("2b44ec11d5ee730fe1c47b11fa6c7b116947bf9158f0b29e1a0f8285a56e066a", (289, 14)),
    SET29: ("01d84d4ca2dee51ee07dd101d59bb849a9b12c5ae50227728a1bf8189b68900d", (281, 11)),
    SET30: ("d8071a12e39a6e4a2d2f0e3e8b18b38631c92088c69a0efbfd2073ab5d34f54c", (279, 20)),
    SET31: ("ede21ed93adcbe91a4ea88b217f08e8ffb5a047164fa05461b29ebd7cc9ca82f", (280, 18)),
    SET32: ("7291e954e485f4e4c2070464b123ed8a0712b9ec8a5476b99930f6cfb30de85d", (277, 18)),
    SET33: ("a26f2c8f1ed6300424d4a28fba9e0bbe1de31e6c359bfd4c0af96307d89a31ec", (292, 17)),
    SET34: ("21f0d52965a56227d872e6ff6aa53c0813fcc0fa40bd3e7f927b05fb8b33c26a", (282, 26)),
    SET35: ("6b52c6a1ed9065c05ce84ac1971f82f30ffa1b885c49f7216363db002ca77d39", (293, 10)),
    SET36: ("44e709e722a15e9efe3ee421cb75f622b5200c9dad61d5182b1de5dd8c6ab79f", (289, 11)),
    SET37: ("f215e94127cfc75f63e58e14eaab95da6feb188aedf645f947071629985d4c8f", (286, 16)),
    SET38: ("2e4dc0c95961a7905c03823dbc0c81594fb7e1f40da38aad1354037f0cde85a3", (288, 17)),
    SET39: ("bfb944e77b042212dc6f53165a42fa16acffe9e3c73631d33b017155f92951af", (291, 12)),
    SET40: ("919c688cd6b18b30ca7542ca6f6b07118a6804c33864e2f94858eda59025ae80", (271, 8)),
    SET41: ("9a01a4ce6cf30ad5ece4983ad626262b40d274697a2e045c3fd5c7219984644b", (269, 12)),
    SET42: ("14858985f5c0260d33995a1010eececeea59b8e2063f53ace786f3dd8f64c460", (280, 13)),
    SET43: ("edf63bf6ea8b76b15356b1f786181c6e0e976a617cf4c438105bb387f31232c3", (286, 10)),
    SET44: ("8aa2ee1441ab8f160b3e69d32a1bbc05721d786b5b97d81e4ba4ebd61ddac4d8", (286, 17)),
    SET45: ("c1f26c38b2903feb0587b4df85404c96ed219302435d2378f37fc0b2e8baacf8", (291, 10)),
    SET46: ("421cdcd67239c57560761b73d74bcf0902448ebdeea2b0303bb5df0010221179", (289, 13)),
    SET47: ("16b2fa40164db70a48e7ba015e907e837f90f7919107f931e5fb6130322b0819", (294, 14)),
    SET48: ("9b122b504cb5464b1765046504011e4ea57daad36069e42bf192ac5b1248965d", (282, 16)),
    SET49: ("021900d2439fdb74156cd145109326625900a8cba785060f985faaa695b9cd7e", (291, 12)),
    SET50: ("5660d0c300d948837da1783c71625d6df56636cb6689acf0029f6b7c6a683c32", (284, 9)),
    SET51: ("1067c2ba8a0852fd3a520419459f0330f87c4c67f21aa5754f5a62a7b4c4c91b", (284, 4)),
    SET52: ("0600ea20e96abea3e4ae8177832eecc332f33e87619597973cae1f798b033a7b", (279, 8)),
    SET53: ("7b04dcaf9f57d26c9354274072d6544e86d5bfb3ac3265372500a6568e162d00", (274, 24)),
    SET54: ("e96316500e0b22f925e76e028256cced37be0710e59d5a3bd564a917dbfe3983", (279, 6)),
    SET55: ("6d690692b28aa7e5133c78dd11e4aea5f9a29ebe0a3b31bb5151a149f586a205", (280, 8)),
    SET56: ("c76b0a31b03c5cabd787d653916f1d4fa78d3a4da094450f9e9c2c86c93a67a3", (284, 11)),
    SET57: ("a5f03ffe6f1c84f8744cfc2b732b01c04d9d1ae202d4cbb92289f8feaa7a8d0b", (283, 13)),
}


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector.load()


@pytest.mark.parametrize("path", list(LATER_SETS), ids=lambda p: p.stem)
def test_a_later_set_is_guarded(path: Path) -> None:
    sha, _ = LATER_SETS[path]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, (
        f"{path.name} changed: record its new SHA-256 and say why in docs/crisis.md"
    )
    items = load(path)
    assert len(items) == 600 and sum(e.label for e in items) == 300
    assert {e.split for e in items} == {"holdout"}


#: Session 24: the sets 21-44 are in the model's fit (`crisis_train.SPENT_SETS`), so the figures
#: they were scored at no longer bind; these are their figures read in-sample at the session's
#: end, kept so that a change of phrases or model that loses their texts says so.
IN_THE_FIT = {
    21: (300, 2),
    22: (299, 2),
    23: (299, 3),
    24: (299, 6),
    25: (297, 6),
    26: (298, 3),
    27: (297, 4),
    28: (294, 6),
    29: (288, 7),
    30: (288, 8),
    31: (289, 8),
    32: (289, 2),
    33: (295, 5),
    34: (291, 11),
    35: (295, 3),
    36: (293, 10),
    37: (291, 4),
    38: (291, 7),
    39: (295, 8),
    40: (281, 6),
    41: (282, 6),
    42: (287, 5),
    43: (294, 5),
    44: (290, 7),
}


@pytest.mark.parametrize("path", list(LATER_SETS), ids=lambda p: p.stem)
def test_a_later_sets_figures_as_recorded(detector: CrisisDetector, path: Path) -> None:
    s = score((e, d.matched) for e, d in run(detector, load(path)))
    print(f"\n{path.name}: found {s.tp} of {s.tp + s.fn}, false alarms {s.fp} of {s.fp + s.tn}")
    numbers = {int(p.stem.removeprefix("crisis_heldout")): p for p in LATER_SETS}
    assert set(IN_THE_FIT) <= set(numbers)  # each set in the fit is read here
    number = int(path.stem.removeprefix("crisis_heldout"))
    # The figures it was scored at, and for a set in the model's fit its in-sample ones too.
    for found, false_alarms in (LATER_SETS[path][1], IN_THE_FIT.get(number, (0, 300))):
        assert s.tp >= found
        assert s.fp <= false_alarms


#: Session 26: 400 everyday texts full of crisis words in their everyday senses ("i overdosed on
#: caffeine lol", "boludo me quiero matar, perdi las llaves"), written by a writer told to open
#: nothing; a development set (the phrases' everyday senses were written from it). 35 alarmed
#: when written (c7683c2's detector), 23 after (20 of them the model's alone), 22 once plain
#: loneliness alone ("i feel like nobody understands me lately") was a model near miss.
#: A second writer's 400 (the same brief, "make yours your own"), scored once at 2bc3809: 23
#: alarms (25 at the session's start, c7683c2; 18 of the 23 the model's alone); then "se me
#: corto" (the flan curdled) was read as the accident it is: 22.
EVERYDAY = {
    HERE / "crisis_everyday26.yaml": (
        "78f45a4af101dc9ddae1317d24bb1f443ae2adde5ffbe8758e0e2c79099f2750",
        22,
    ),
    HERE / "crisis_everyday26b.yaml": (
        "06f7d973f5733d819c03d4b1bfcae2ce526698e64dfef253bf3d1b3b7753cf4f",
        22,
    ),
    # A third writer's 400, scored once at the session's end (1e5e710): 11 alarms, 9 of them the
    # model's alone; the session's start (c7683c2) gave the same 11.
    HERE / "crisis_everyday26c.yaml": (
        "c9935373a8c05c7f6fa24628315dbbadf4af0820e884374a7433286a39eb99f0",
        11,
    ),
    # Session 27: four more writers, each scored once at the session's start (411ae63), before
    # anything was written for them: texts to friends and family and first texts to the line (a,
    # 600: 29 alarms, 27 the model's alone), replies in a chat about everyday troubles (b, 600:
    # 37, 32), longer everyday situations (c, 600: 38, 34), and a mix kept back to measure the
    # model refitted on a, b and c (m, 400: 19, 14). The floors are after the eight phrase
    # alarms' everyday senses (bdf65e6): 28, 33, 35, 19; with a door as the way in, alone, a 27.
    # docs/crisis.md "Session 27".
    HERE / "crisis_everyday27a.yaml": (
        "490db290dd34936e69b920a4e875dfdb04189b7278ab3aca71bfb0a4dc475b09",
        27,
    ),
    HERE / "crisis_everyday27b.yaml": (
        "12aab5a39f57052c238565f2b7986af5675f4181d274ec5008b73133653c2d11",
        33,
    ),
    HERE / "crisis_everyday27c.yaml": (
        "009f99989db4cd7237b3831f2c5b5c0d3c58aff1502de91b6ad8038fd26f661e",
        35,
    ),
    HERE / "crisis_everyday27m.yaml": (
        "3f0842196eca8206ef025aa15bc2f90ee70b892d57108e18aaf2c0f03707d393",
        19,
    ),
    # A fifth writer's 600 about the objects of home life (doors, keys, garages, cars, belts,
    # razors), after a tester's "car keys are on the hook by the door" got the crisis text:
    # scored once at 77f0015, 64 alarms (10.7%), 55 of them the model's alone; 63 since the
    # door's model near misses.
    HERE / "crisis_everyday27d.yaml": (
        "5e37fa22f5f040c2b0b1e679a89a60bd39bb75a98db155da52d2c96a0ca6f590",
        63,
    ),
}


@pytest.mark.parametrize("path", list(EVERYDAY), ids=lambda p: p.stem)
def test_everyday_texts_with_crisis_words_rarely_alarm(
    detector: CrisisDetector, path: Path
) -> None:
    sha, most = EVERYDAY[path]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    items = load(path)
    assert len(items) in (400, 600) and not any(e.label for e in items)
    alarms = [e.text for e in items if detector.detect(e.text).matched]
    print(f"\n{path.name}: {len(alarms)} of {len(items)} alarm")
    assert len(alarms) <= most, alarms


# Session 21: the spent sets' misses and false alarms as families, in sentences of this file's
# own (the sets' texts are scored by the floors above).
FAMILIES = [
    ("took my pills on purpose", "attempt"),
    ("hey. od'd on purpose", "attempt"),
    ("friday is my last night alive", "plan"),
    ("gonna hang myself at 2am", "plan"),
    ("steering the car into a tree tonight", "plan"),
    ("self harmed again last night", "self_harm"),
    ("ya estoy en la azotea pa tirarme", "danger_place"),
    ("rumbo al puente para saltar", "danger_place"),
    ("cartas escritas, ya me siento preparada", "preparation"),
    ("hice un audio de despedida pa mi hija", "preparation"),
    ("a las 2am me cuelgo", "plan"),
    ("me veo colgandome del ropero", "method"),
    ("abro la llave del gas y me muero asi", "method"),
    ("diosito llevame contigo", "wish_dead"),
    ("ya no me quedan ganas de seguir", "burden_hopelessness"),
    ("praying its cancer so its over", "wish_dead"),
    ("i wont be around for christmas this year. its fine", "intent"),
    ("i think im checking out of this life soon", "intent"),
    ("tengo un plan y me tiro del puente", "plan"),
    ("me voy a tomar el frasco entero de una", "plan"),
    ("said goodbye without them knowing", "preparation"),
    ("hugged her because its the last time", "preparation"),
    ("nadie sabe que es la ultima vez", "preparation"),
    ("les di las gracias a todos como despedida", "preparation"),
    ("my son would get his life back if i was gone", "burden_hopelessness"),
    ("ordered more blades, i cant stop", "self_harm"),
    # The first freeze's spent sets (twenty-second to twenty-fourth, fifth and sixth short).
    ("threw myself off the roof but im still here", "attempt"),
    ("me lance de la azotea pero no funciono", "attempt"),
    ("drank a cup of the antifreeze in the garage", "attempt"),
    ("took my whole weeks worth of meds at once", "attempt"),
    ("swallowed the whole bottle please help", "attempt"),
    ("the rope is around my neck now", "attempt"),
    ("climbed out onto the roof, 6 floors up, scared", "danger_place"),
    ("sitting in my car across the railroad tracks", "danger_place"),
    ("estoy sentada en las vias del metro", "danger_place"),
    ("azotea, no es pa ver la vista", "danger_place"),
    ("got the pills and im crying", "means"),
    ("gun is under my chin", "means"),
    ("took my dads pistol out of the lockbox", "means"),
    ("grabbed the razor, locked myself in the bathroom", "means"),
    ("el cuchillo aqui al ladito, no aguanto", "means"),
    ("pills. told him theyre for my dad", "preparation"),
    ("gave all my stuff away. its time", "preparation"),
    ("sent my passwords to my sister and updated my will", "preparation"),
    ("escribi una carta antes de matarme", "preparation"),
    ("its planned for when my parents go away", "plan"),
    ("i know where and when", "plan"),
    ("esta noche me aviento del puente", "plan"),
    ("el viernes es mi ultimo dia con vida", "plan"),
    ("gonna take myself out soon", "intent"),
    ("nothing is stopping me from ending it", "intent"),
    ("i could just stop existing", "wish_dead"),
    ("i wouldnt mind if i went to sleep and never woke up", "wish_dead"),
    ("quisiera cerrar los ojos y no despertar", "wish_dead"),
    ("me quiero ir de este mundo", "wish_dead"),
    ("the kms thoughts are back", "active_thoughts"),
    ("pienso en ponerle fin a mi vida", "active_thoughts"),
    ("pienso chocar el carro contra un poste", "method"),
    ("enough sleeping pills to not wake up", "method"),
    ("two attempts already", "past_attempt"),
    ("snapped my pencil sharpener again", "self_harm"),
    ("me queme a proposito con un cigarro", "self_harm"),
    ("no way out and im done trying", "burden_hopelessness"),
    ("mis hijos vivirian en paz sin mi", "burden_hopelessness"),
    ("no hay esperanza", "burden_hopelessness"),
    # The second freeze's spent sets (twenty-fifth to twenty-seventh, seventh short).
    ("the garage is full of exhaust and i feel dizzy", "attempt"),
    ("tried to hang, the belt broke", "attempt"),
    ("me trague un vaso de cloro", "attempt"),
    ("on the ledge outside the bathroom window", "danger_place"),
    ("the truck is running in the garage, door shut, getting sleepy", "danger_place"),
    ("en el puente, juntando valor", "danger_place"),
    ("me tiro del risco ahorita", "danger_place"),
    ("holding my service weapon, alone tonight", "means"),
    ("staring at my pill stash", "means"),
    ("tengo la navaja y no confio en mi", "means"),
    ("traigo la soga en el maletero, ya no aguanto", "means"),
    ("it felt like goodbye because it was", "preparation"),
    ("she thinks im being dramatic. i said goodbye", "preparation"),
    ("junte pastillas todo el mes", "preparation"),
    ("the suicide clause on the policy expires friday, insurance will pay", "plan"),
    ("i know which bridge", "plan"),
    ("cuando todos se duerman me tomo las pastillas", "plan"),
    ("me voy pal puente y me tiro", "danger_place"),
    ("this is not a cry for help", "intent"),
    ("m quito la vida", "intent"),
    ("i pray to god every night to take me", "wish_dead"),
    ("some days i wish i hadnt made it home", "wish_dead"),
    ("thinking about ending things. not the relationship. me", "active_thoughts"),
    ("i keep thinking about offing myself", "active_thoughts"),
    ("i look at my belts differently", "method"),
    ("si tomo raticida me muero rapido?", "method"),
    ("desperte en urgencias despues de tomarme las pastillas", "past_attempt"),
    ("estuve internado por un intento", "past_attempt"),
    ("valgo mas muerta que viva", "burden_hopelessness"),
    ("i went back to cutting this week", "self_harm"),
    ("need to see blood right now", "self_harm"),
    # Session 22: the 32nd-35th sets' misses (a narrow set, after a review).
    ("llevo toda la tarde googleando dosis letales", "preparation"),
    ("meti mi mano en la estufa adrede para sentir algo", "self_harm"),
    ("hoy subo a la terraza y me tiro", "plan"),
    ("me tomo todas mis pastillas, ya lo decidi", "plan"),
    # A Spanish text that opens by addressing someone ("tia", "tio": dude) with the writer's own
    # "me" right after: the writer's (dropped as someone else's until session 22).
    ("tia me he tomado todas las pastillas de mi abuela", "attempt"),
    ("hola tio me he vuelto a cortar los brazos", "self_harm"),
    # Session 26: ...or a thing at hand named right after the address (a tester's text).
    ("tia la soga esta lista", "means"),
    ("hola amiga la navaja ya esta lista", "means"),
    # Session 24: the spent 48th-50th sets' plainest misses, narrow (this file's own sentences).
    ("me hago cortes en las piernas con una navaja cuando nadie me ve", "self_harm"),
    ("ultimamente pienso en poner fin a mi vida", "active_thoughts"),
    ("esta idea de suicidarme me persigue desde el lunes", "active_thoughts"),
    ("anoche me colgue del ventilador y el nudo se solto", "attempt"),
    ("estoy en la cornisa del edificio, aun no me he tirado", "danger_place"),
    ("the thought of taking myself out wont leave me alone", "active_thoughts"),
    ("afraid of what i am going to do to myself", "intent"),
    ("ya no quiero seguir en este mundo, ya me canse", "wish_dead"),
    # Session 24: the spent 51st-53rd sets' plainest misses, narrow.
    ("drank like a cup of the roundup from the barn", "attempt"),
    ("drank about half a bottle of the bleach. my kid is asleep upstairs", "attempt"),
    ("holding my sidearm. not ok", "means"),
    ("tried to end it with my dads shotgun", "past_attempt"),
    ("me raye los brazos otra vez", "self_harm"),
    ("me rasgue la piel hasta sacarme sangre", "self_harm"),
    # ...and an entry the model's gate never spared an everyday text for, now sure.
    ("perdon la hora, solo queria decir q ya decidi quitarme la vida y no tengo miedo", "intent"),
    # Session 26: the spent 56th set's misses (plain first texts), narrow, in sentences of this
    # file's own.
    ("a veces me golpeo la cabeza cuando me desespero", "self_harm"),
    ("me paso las noches rezando no despertar", "wish_dead"),
    ("cuando voy a la chamba pienso en estrellarme contra un trailer", "method"),
    ("si me meto al rio y no salgo nadie lo nota", "method"),
    ("por fin compre la soga, ya no hay vuelta atras", "preparation"),
    ("on my way home i always think about just swerving into the median", "method"),
    ("three months clean and today i want to cut again", "self_harm"),
]

NEAR_MISSES = [
    "attempted back in 2015, stable now and a mom of two",
    "third attempt at the driving test and i passed!!",
    "no hay salida de este embotellamiento",
    "my therapist asked if i have thoughts of suicide. i dont",
    "la doctora me pregunto si tengo pensamientos de hacerme dano y le dije que no",
    "cant wait to jump into the ocean on vacation, 5 more days",
    "ya lo decidi, me caso con el en junio",
    "mi plan es tomarme un cafe y dormir la siesta",
    "hice mi testamento con la abogada, tengo 68",
    "took all the expired meds to the pharmacy take back day",
    "tengo las pastillas de la presion en la mano, las tomo con comida?",
    "el carro prendido en la cochera con la puerta abierta pa calentar",
    "my dog would be happier without me, she loves my mom more lol",
    "no creo que estarian mejor sin mi, me quieren mucho",
    "i wont be around for my birthday, ill be on a work trip",
    "checking out of the hotel early tomorrow",
    "bought new razor blades for shaving",
    "gonna od on candy at midnight lol",
    "me voy a tomar todo el frasco de jarabe para la tos",
    "dios llevame a la playa",
    "no me queda bateria",
    # The first freeze's spent sets.
    "cut my thumb opening a can and its still bleeding",
    "im gonna do it, im asking for the promotion",
    "picked the spot for the wedding photos",
    "the urge to cut my hair short",
    "regalando mis uniformes de la secundaria",
    "knife is right here and i cant open the box",
    "took all my pills at once today because the doctor said so",
    "sitting on the tracks for a photoshoot lol",
    "climbed onto the roof to fix the shingles",
    "got the knife and im crying, onions are brutal",
    "gave everything away before moving to japan, almost time",
    "taking myself out for ice cream tonight",
    "nothing stopping me from dying my hair blue",
    "3 attempts at the driving test so far lol",
    "me queme sin querer con la plancha",
    "mi familia seria mas feliz sin mi karaoke jaja",
    "antes sentia que estarian mejor sin mi, la terapia me ayudo",
    "no hay esperanza para el equipo este ano jaja",
    "my toddler drank some of the bleach water, poison control said hes ok",
    # The second freeze's spent sets.
    "ojala no despertar hasta el lunes",
    "rather be dead than go to his wedding lol",
    "the plan is the quarry after work, swimming with the guys",
    "counted my pills twice, the pharmacy shorted me",
    "train stuck on the tracks again",
    "me corto el pie el vidrio de la ducha",
    "tengo la insulina en la mesa porque se fue la luz",
    "how much tylenol can i give my 4 year old",
    "the garage is full of smoke from the bbq lol",
    "no se nadar, quiero clases en la alberca",
    "went back to cutting coupons",
    # Session 22: the 32nd-35th sets' false alarms (a narrow set, after a review).
    "finally going through with it, getting a tiny tattoo of my dads initials",
    "parked on the top floor again and couldnt find my car for an hour",
    "paper cut on my thumb and so much blood for something so tiny",
    "my therapist had me write a goodbye letter to my younger self",
    "ya compre la botella de tequila y las pastillas pa la cruda del domingo",
    "me tome mis dos pastillas para dormir como me dijo la doctora",
    "no, nunca he pensado en hacerme dano, solo estoy cansada",
    "me siento fea, nada de lastimarme, solo inseguridad",
    "no le veo salida al sudoku de hoy jaja",
    "no creo que mis papas estarian mejor sin mi, solo peleamos mucho",
    # ...but someone named after the address is theirs.
    "tio mi hermana se ha tomado todas las pastillas",
    # Session 24: the everyday senses beside the 48th-50th sets' families.
    "estoy en el borde del trampolin y todavia no me he tirado, que miedo",
    "ya no quiero estar en este mundo de la politica, renuncio al partido",
    "me colgue de la puerta para hacer dominadas y el cinturon se rompio",
    "afraid of what im going to do to myself if i eat another donut",
    "mi abuelo siempre decia ya no quiero seguir en esta tierra cuando se enojaba",
    # Session 24: the everyday senses beside the 51st-53rd sets' families.
    "holding my service weapon at the range, not ok with the new trigger",
    "me raye el brazo con el plumon en clase jaja",
    "drank like a cup of the cleaner by accident, poison control said im fine",
    "tried it with my dads shotgun, ducks everywhere",
    "me raye las piernas con las ramas subiendo el cerro",
    "en la telenovela la protagonista dijo ya decidi quitarme la vida y mi mama lloro",
    # Session 26: the everyday senses beside the 56th set's families; "need to cut" with an
    # everyday object sent the crisis text until then.
    "i need to cut the grass before my dad gets home",
    "i want to cut my bangs",
    "need to cut class tomorrow lol",
    "hoy compre una soga para el columpio de mi hija",
    "me golpeo el dedo con la mesa cada vez que me enojo jaja",
    "los domingos me meto al mar a nadar y no salgo en horas",
    "my boss wants to cut again next years budget",
    # Session 26: a writer's 400 everyday texts with crisis words in them (outside the
    # repository) raised 35 alarms; the phrases' everyday senses, in this file's sentences.
    "pretty sure i overdosed on espresso this morning lol",
    "i overdosed on candy again lol",
    "ya lo intente una vez con el ingles",
    "este crucigrama es imposible, me rindo",
    "no way out of this level, i give up",
    "nadie me va a parar, ese ascenso es mio",
    "se me corto la leche otra vez",
]

MODEL_NEAR_MISSES = [
    "ya me tome mi pastillita",
    "ya me tome el antidepresivo po",
    "no, im not suicidal",
    "is it only for suicidal ppl",
    "sorry for being a bother",
    "spilled bleach on my hoodie",
    "todo va a mejorar",
    "just pulled into the garage",
    # Session 24: the model fitted on the spent sets too reads these alone (p 0.82 and 0.80).
    "I can't go on Friday",
    "esto es linea de suicidio?",
    # Session 26: loneliness said plainly, alone (p 0.90-0.96).
    "no one understands me anymore",
    "hi. i feel like nobody gets me",
]

#: Whole-message near misses the session-24 model reads under its threshold on its own (p 0.72
#: and 0.64; 0.85 and 0.78 when their patterns were written): still quiet.
MODEL_NEAR_MISSES_NO_LONGER_NEEDED = ["ya intente meditar", "im not going to hurt myself"]

#: Beside a whole-message near miss a plea or more words are no everyday text.
NOT_MODEL_NEAR_MISSES = [
    "ayuda ya me tome las pastillas",
    "ya me tome mis pastillas",
    "nobody understands me and i want to die",
    "i feel like nobody understands me, i have the pills here",
]


@pytest.mark.parametrize(("text", "category"), FAMILIES)
def test_the_spent_sets_families_are_found(
    detector: CrisisDetector, text: str, category: str
) -> None:
    found = detector.detect(text)
    assert found.matched and found.category == category, (text, found)


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_the_spent_sets_near_misses_stay_quiet(detector: CrisisDetector, text: str) -> None:
    assert not detector.detect(text).matched, text


@pytest.mark.parametrize("text", MODEL_NEAR_MISSES)
def test_a_whole_message_the_model_near_misses_name_is_not_heard(
    detector: CrisisDetector, text: str
) -> None:
    # The model alone would alarm on each (p 0.78-0.97 when written).
    assert detector.model is not None and detector.model.probability(text) >= 0.75, text
    assert not detector.detect(text).matched, text


@pytest.mark.parametrize("text", MODEL_NEAR_MISSES_NO_LONGER_NEEDED)
def test_a_whole_message_near_miss_the_model_reads_alone_stays_quiet(
    detector: CrisisDetector, text: str
) -> None:
    assert not detector.detect(text).matched, text


@pytest.mark.parametrize("text", NOT_MODEL_NEAR_MISSES)
def test_more_than_the_model_near_miss_is_still_read(detector: CrisisDetector, text: str) -> None:
    assert detector.detect(text).matched, text


# The session's review (a helper's 324 everyday texts and 130 crisis texts against the
# session-start detector): crisis the first mends had silenced, and everyday senses they raised.
REVIEW_CRISIS = [
    "no se, creo que me voy a matar hoy",
    "me tome las 20 pastillas para dormir que me recetaron",
    "had thoughts of killing myself in my teens and now they are back",
    "my kids and even my cat would be better off without me",
    "le dije que no pero es mentira, si pienso en matarme",
    "took all my expired pills at once",
    "at the beach alone, going to jump into the ocean and not come back",
    "my engagement is off. standing on the ledge of the parking garage",
    "ya me tome todo el antidepresivo",
]
REVIEW_EVERYDAY = [
    "the seat belt is around my neck in this rental",
    "checking out early today, doctor appointment",
    "going to take myself out of the group chat",
    "me da panico chocar el carro contra la pared al estacionar",
    "mi esposo seria mas feliz sin mi suegra en la casa",
    "i know which train to take now, thanks",
    "i know when and how to take my inhaler",
    "hoy me matare estudiando para el final",
    "two attempts so far with ivf",
    "cut again this morning shaving, cant stop bleeding",
    "no me quedan fuerzas para seguir estudiando hoy",
    "cuando se duerman me tomo las pastillas de la presion",
    "tienes que seguir derecho hasta el rio y ahi doblas",
]


@pytest.mark.parametrize("text", REVIEW_CRISIS)
def test_the_reviews_crisis_texts_are_found(detector: CrisisDetector, text: str) -> None:
    assert detector.detect(text).matched, text


@pytest.mark.parametrize("text", REVIEW_EVERYDAY)
def test_the_reviews_everyday_texts_stay_quiet(detector: CrisisDetector, text: str) -> None:
    assert not detector.detect(text).matched, text


def test_a_model_near_miss_right_after_a_crisis_is_read(detector: CrisisDetector) -> None:
    # "walking over the bridge" alone is an everyday text; right after the texter's own crisis
    # words it may be where they are going.
    text = "just pulled into the garage"
    assert not detector.detect(text).matched
    assert detector.detect(text, after_crisis=True).matched


def test_a_line_can_name_its_own_forms_of_address(tmp_path: Path) -> None:
    # The forms of address live in the phrase file's third_person section beside the markers,
    # so a line's extra file adds its own ("vecino" is a marker: a neighbour, or "mate").
    text = "vecino me he tomado todas las pastillas"
    assert not CrisisDetector.load(model=False).detect(text).matched
    extra = tmp_path / "extra.yaml"
    extra.write_text("third_person:\n  address:\n    es: [vecino]\n", encoding="utf-8")
    found = CrisisDetector.load(str(extra), model=False).detect(text)
    assert found.matched and found.category == "attempt"


#: Session 27: the everyday senses behind phrase alarms on the fresh everyday sets a, b and c
#: (a concert tonight, a home by the tracks, a school bag packed for tomorrow, school books
#: passed on, a holiday worked, a bird on the ledge, a haircut decided, giving up on the kids'
#: toys), in sentences of this file's own. Quiet by the phrases alone, not just by the model.
EVERYDAY_27 = [
    "tonight's the night!! seeing the killers live with my sister",
    "tonights the night, i finally get to see green day live",
    "my new place is by the tracks and the 5am train wakes me up every day",
    "we live by the tracks so the train coming at midnight is normal for us",
    "ya tengo todo listo para mañana, la mochila y el uniforme de mis hijos",
    "deje todo listo anoche: mochila, lonche y uniforme planchado",
    "le di mis libros de la secu a mi sobrino, el entra en agosto",
    "regale mis libros de la universidad a una chava que empieza la carrera",
    "my parents will be fine without me at christmas dinner, im on call",
    "the family will be ok without me this weekend, i got called into work",
    "the birds are sitting on the roof of my building again",
    "a crow is perched on the railing of my balcony every morning",
    "there's a pigeon sitting on the ledge outside the kitchen window, it's huge",
    "ok i'm gonna do it, i'm dyeing my hair pink tomorrow",
    "im going to do it, im getting a tattoo on friday",
    "i'm going to do it. i'm shaving my head this weekend",
    "ya me rendi con que mis roomies laven sus platos",
    "ya me rendi con que el perro no se suba al sillon",
]
#: ...while the crisis senses of the same phrases are still found.
CRISIS_27 = [
    ("tonights the night. goodbye", "plan"),
    ("tonight is the night, im seeing it through", "plan"),
    ("im by the tracks and the train is coming", "danger_place"),
    ("i live alone and im by the tracks waiting for the train", "danger_place"),
    ("ya deje todo listo, los quiero mucho", "preparation"),
    ("regale mis libros, ya no los voy a necesitar", "preparation"),
    ("le regale mis libros a mi hermana, ya no los voy a necesitar", "preparation"),
    ("my family will be fine without me", "burden_hopelessness"),
    ("my family will be fine without me at this point", "burden_hopelessness"),
    ("ya me rendi con la vida", "burden_hopelessness"),
    ("ya me rendi", "burden_hopelessness"),
    ("ya me rendi con que las cosas mejoren", "burden_hopelessness"),
    ("im going to do it tonight", "plan"),
    ("ok im going to do it, im cutting my wrists tonight", "plan"),
    ("i'm sitting on the ledge", "danger_place"),
    ("the birds are loud and im sitting on the ledge of the roof", "danger_place"),
]


@pytest.mark.parametrize("text", EVERYDAY_27)
def test_the_fresh_everyday_sets_senses_stay_quiet(detector: CrisisDetector, text: str) -> None:
    assert not detector.detect_phrases(text).matched, text
    assert not detector.detect(text).matched, text


@pytest.mark.parametrize(("text", "category"), CRISIS_27)
def test_the_fresh_everyday_sets_crisis_senses_are_found(
    detector: CrisisDetector, text: str, category: str
) -> None:
    found = detector.detect(text)
    assert found.matched and found.category == category, (text, found)
