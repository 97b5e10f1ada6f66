"""Constructed dialogues for the heuristic checks: a clean one per language, and faulty variants.

Written for these tests. Each clean dialogue has four turns with answers of similar length
on one topic; the variants add exactly one fault.
"""
from __future__ import annotations

CLEAN = {
    "en": [
        ("Why do volcanoes erupt?",
         "Deep under the surface, rock melts into magma, which is lighter than the solid rock around it. It rises "
         "and collects in chambers. When gas dissolved in the magma comes out of solution, pressure builds up until "
         "the magma forces its way through cracks to the surface, and that is an eruption."),
        ("Are all eruptions explosive?",
         "No. Runny magma with little gas, like the basalt of Hawaii, tends to pour out quietly as lava flows. Sticky "
         "magma rich in silica traps its gas, so the pressure is released violently, as happened at Mount St. Helens "
         "in 1980 when the side of the mountain blew out."),
        ("How do scientists predict an eruption?",
         "They watch for warning signs: swarms of small earthquakes as magma moves, the ground swelling measured by "
         "GPS and satellites, and changes in the gases leaking from vents, especially sulfur dioxide. None of these "
         "gives an exact date, but together they let observatories raise alert levels in time to evacuate."),
        ("What happens to the land after an eruption?",
         "At first the area looks barren, covered in ash or hardened lava. Over years, weathering breaks the rock "
         "into soil that is rich in minerals, and plants move in, starting with mosses and lichens. That is why many "
         "volcanic regions, from Java to Italy, have some of the most fertile farmland on Earth."),
    ],
    "ko": [
        ("무지개는 왜 생기나요?",
         "무지개는 햇빛이 공기 중의 작은 물방울을 통과할 때 생겨요. 빛이 물방울 안으로 들어가면서 꺾이고, 안쪽 면에서 한 번 "
         "반사된 뒤 다시 나오면서 또 꺾이는데, 이때 색깔마다 꺾이는 정도가 달라서 빨강부터 보라까지 나뉘어 보이는 거예요."),
        ("무지개는 왜 항상 둥근 모양이에요?",
         "빛이 물방울에서 반사되어 나오는 각도가 대략 42도로 거의 일정하기 때문이에요. 관찰자의 눈을 기준으로 그 각도를 "
         "이루는 점들을 모두 이으면 원이 되는데, 땅에 가려서 보통은 반원처럼 보이죠. 비행기에서 보면 완전한 원형 무지개를 "
         "볼 수도 있어요."),
        ("쌍무지개는 어떻게 만들어지나요?",
         "두 번째 무지개는 빛이 물방울 안에서 두 번 반사될 때 나타나요. 반사가 한 번 더 일어나니 빛이 약해져서 더 흐릿하고, "
         "색의 순서도 첫 번째 무지개와 반대로 바깥쪽이 보라색이 됩니다. 두 무지개 사이의 하늘이 유난히 어두운 것도 같은 "
         "원리로 설명할 수 있어요."),
        ("밤에도 무지개를 볼 수 있나요?",
         "네, 드물지만 달빛으로도 무지개가 생기는데 이를 월무지개라고 불러요. 달빛은 햇빛보다 훨씬 약해서 사람 눈에는 "
         "대부분 하얗게 보이고, 사진을 오래 노출해서 찍어야 색이 드러나요. 보름달이 낮게 떠 있고 폭포나 비구름이 반대편에 "
         "있을 때 만날 확률이 높아요."),
    ],
    "ja": [
        ("どうして地震が起きるのですか？",
         "地球の表面は十数枚のプレートという岩盤に分かれていて、それぞれがゆっくり動いています。プレート同士がぶつかったり、"
         "すれ違ったりする境目にはひずみがたまり、岩盤が耐えきれなくなって一気にずれると、その揺れが地震として伝わります。"),
        ("日本で特に地震が多いのはなぜですか？",
         "日本列島は四つのプレートが集まる場所の上にあるからです。太平洋プレートやフィリピン海プレートが陸側の下へ沈み込み"
         "続けているため、海溝型の大きな地震も、内陸の活断層による地震も、世界の中で見てもとても頻繁に起こります。"),
        ("地震の大きさはどうやって表すのですか？",
         "二つの尺度があります。マグニチュードは地震そのもののエネルギーの大きさで、一つ上がるとエネルギーは約三十二倍に"
         "なります。震度はある地点でどれだけ揺れたかを示すもので、日本では気象庁が〇から七までの十段階で発表しています。"),
        ("家でできる備えには何がありますか？",
         "まず家具を壁に固定し、寝室には背の高い物を置かないようにしましょう。水や食料は少なくとも三日分、できれば一週間分"
         "を用意し、懐中電灯や携帯ラジオ、常備薬もまとめておくと安心です。家族で避難場所と連絡方法を決めておくことも大切です。"),
    ],
    "zh": [
        ("绿茶和红茶有什么区别？",
         "最大的区别在于发酵程度。绿茶采摘后很快经过杀青，用高温停止叶子里的酶活动，所以保持了绿色和清新的味道；红茶则让"
         "茶叶充分氧化，颜色变成红褐色，滋味也更加醇厚甜润。"),
        ("哪一种茶的咖啡因更多？",
         "一般来说，红茶每杯的咖啡因略高一些，但差别并不大，更主要取决于茶叶的品种、采摘部位和冲泡方法。用更热的水、泡更长"
         "时间，会让更多咖啡因溶出；嫩芽做成的茶往往也比老叶含量高。"),
        ("泡绿茶的水温应该是多少？",
         "建议用七十五到八十五度左右的水。水太烫会把细嫩的叶片烫熟，带出苦涩味，也会破坏香气；水温偏低则香味出不来。可以先"
         "把开水倒进公道杯里稍微放凉，再注入放了茶叶的玻璃杯中。"),
        ("茶叶应该怎么保存？",
         "茶叶怕潮湿、怕光、怕异味，也怕高温。最好装进密封罐，放在阴凉干燥的地方，远离厨房里的调料。绿茶容易变质，可以分成"
         "小包冷藏；而普洱这类需要陈放的茶，反而要保持适度通风。"),
    ],
}

CATCHPHRASE = {
    "en": "Oh my stars and comets, what a question!",
    "ko": "정말 궁금한 게 많으시군요, 제가 다 알려드릴게요!",
    "ja": "ふふっ、わたしにおまかせくださいね！",
    "zh": "嘿嘿，这可难不倒本茶仙哦！",
}

# A follow-up question that asks the first question again in other words.
REPEATED_QUESTION = {
    "en": "Why do volcanoes erupt at all?",
    "ko": "무지개는 도대체 왜 생기나요?",
    "ja": "どうして地震は起きるのですか？",
    "zh": "绿茶和红茶到底有什么区别？",
}

LANGS = tuple(CLEAN)


def to_messages(turns: list[tuple[str, str]], system: str | None = None) -> list[dict]:
    msgs = [{"role": "system", "content": system}] if system else []
    for q, a in turns:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return msgs


def clean(lang: str) -> list[dict]:
    return to_messages(CLEAN[lang])


def with_catchphrase(lang: str) -> list[dict]:
    """The persona opens (odd turns) or closes (even turns) every answer with the same phrase."""
    cp = CATCHPHRASE[lang]
    sep = " " if lang in ("en", "ko") else ""
    turns = [(q, f"{cp}{sep}{a}" if i % 2 == 0 else f"{a}{sep}{cp}") for i, (q, a) in enumerate(CLEAN[lang])]
    return to_messages(turns)


def shrinking(lang: str) -> list[dict]:
    """Each answer is cut to a smaller share of itself: 100%, 45%, 20%, 8%."""
    turns = []
    for (q, a), share in zip(CLEAN[lang], (1.0, 0.45, 0.2, 0.08)):
        turns.append((q, a[: max(4, int(len(a) * share))]))
    return to_messages(turns)


def echoed_answer(lang: str) -> list[dict]:
    """The third answer repeats the second (after a short lead-in), whatever was asked."""
    lead = {"en": "Well, as I said: ", "ko": "음, 말씀드렸듯이 ", "ja": "ええと、さっきも言いましたが、", "zh": "嗯，我刚才说过，"}[lang]
    turns = list(CLEAN[lang])
    turns[2] = (turns[2][0], lead + turns[1][1])
    return to_messages(turns)


def repeated_question(lang: str) -> list[dict]:
    """The third question asks the first one again in other words."""
    turns = list(CLEAN[lang])
    turns[2] = (REPEATED_QUESTION[lang], turns[2][1])
    return to_messages(turns)


def parroting_user(lang: str) -> list[dict]:
    """The simulated user's third message copies the second answer instead of asking something."""
    turns = list(CLEAN[lang])
    turns[2] = (turns[1][1], turns[2][1])
    return to_messages(turns)


SHORT_TIC = {"en": "Well, well, well!", "ko": "알겠지?", "ja": "ですよね！", "zh": "懂了吧？"}


def with_short_tic(lang: str) -> list[dict]:
    """Every answer ends with the same short sentence (too short for the phrase n-grams)."""
    sep = " " if lang in ("en", "ko") else ""
    return to_messages([(q, f"{a}{sep}{SHORT_TIC[lang]}") for q, a in CLEAN[lang]])
