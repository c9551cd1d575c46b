"""Follow-up questions: the resolver, ``Index.ask(history=...)``, ``index.chat()`` and ``rag chat``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag import Index, RagError
from rag.search.conversation import Resolved, leans_on_history, normalise, resolve

FIRST = [{"role": "user", "content": "Who called for UN visits?"},
         {"role": "assistant", "content": "Mrs. Maryam Rajavi [1]"}]


# -- the resolver --------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["What did she say they should assess?", "With what aim?", "And the IRGC?",
                                      "What about the families?", "Why?", "Where is it?"])
def test_follow_ups_are_recognised(question: str) -> None:
    assert leans_on_history(question)


@pytest.mark.parametrize("question", ["Who won the football world cup in 2018?",
                                      "How many people has the Coronavirus outbreak killed in Iran?",
                                      "What were Amcor's total net sales for fiscal year 2023?", "Who wrote Hamlet?"])
def test_a_question_that_names_its_own_subject_is_searched_alone(question: str) -> None:
    resolved = resolve(question, FIRST)
    assert resolved == Resolved(search=question, read=question, followup=False)


def test_and_a_phrase_asks_the_previous_question_of_it() -> None:
    history = [{"role": "user", "content": "How do I change the port?"},
               {"role": "assistant", "content": "`rag serve --port 7861` [1]"}]
    resolved = resolve("And the host?", history)
    assert resolved.followup and resolved.read == resolved.search == "How do I change the host?"


@pytest.mark.parametrize("question", ["Which president is named in the article?",
                                      "Do I need to bring anything?"])
def test_questions_with_a_topic_of_their_own_lead_their_search(question: str) -> None:
    resolved = resolve(question, FIRST)
    assert not resolved.followup and resolved.read == question
    # Searched with the conversation, the question's own words twice and its embedding leading.
    assert resolved.lead == question and question in resolved.search
    # What the page shows as searched names the question once (the search weights it twice).
    assert resolved.shown.count(question) == 1 and resolved.search.count(question) == 2


def test_a_change_of_topic_is_not_dragged_back_to_the_old_one(seed_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "worldcup.txt"
    other.write_text("The 2018 FIFA World Cup was held in Russia. France won the final against Croatia "
                     "in Moscow, four goals to two.", encoding="utf-8")
    index = Index.build([seed_file, other], tmp_path / "index")
    chat = index.chat()
    assert "Maryam Rajavi" in chat.ask("Who called for UN visits?").span
    answer = chat.ask("Who won the football world cup in 2018?")
    assert answer.hits[0].name == "worldcup.txt"
    # The answer comes from the new topic's document, and is its winner (the stage-4 reader picked
    # "Russia", the host; stages 5 and 6 read it right again).
    assert answer.found and answer.citations[0].name == "worldcup.txt"
    assert answer.span == "France"
    # The search API does the same with history messages.
    assert index.search("Who won the football world cup in 2018?", k=3, history=FIRST)[0].name == "worldcup.txt"


def test_a_pronoun_is_replaced_by_the_name_that_answered() -> None:
    resolved = resolve("What did she say they should assess?", FIRST)
    assert resolved.read == "What did Mrs. Maryam Rajavi say they should assess?"
    assert "visits" in resolved.search and "UN" in resolved.search


def test_an_ellipsis_carries_the_earlier_topic() -> None:
    resolved = resolve("With what aim?", FIRST + [{"role": "user", "content": "What did she say delegations "
                                                   "should do?"},
                                                  {"role": "assistant", "content": "visit Iran [1]"}])
    assert resolved.followup and "delegations" in resolved.search and "Iran" in resolved.search


def test_history_is_validated_and_citation_marks_dropped() -> None:
    assert normalise(FIRST)[1]["content"] == "Mrs. Maryam Rajavi"
    assert normalise([{"role": "user", "text": "doc2dial style"}])[0]["content"] == "doc2dial style"
    with pytest.raises(RagError, match="history\\[0\\]"):
        normalise([{"role": "robot", "content": "hi"}])
    with pytest.raises(RagError):
        normalise(["just a string"])  # type: ignore[list-item]


# -- the library ---------------------------------------------------------------------------------


def test_the_question_s_own_embedding_leads_the_conversation_search(seed_index: Index) -> None:
    import numpy as np

    from rag.search.conversation import LEAD_WEIGHT

    _, retriever = seed_index._require()
    settings = seed_index.settings
    search, lead = "Who called for UN visits? Which president is named in the article?", "Which president is named?"
    query = retriever.context(search, settings, lead=lead, lead_weight=LEAD_WEIGHT)
    vectors = retriever.embedder.encode_queries([search, lead])
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = vectors[0] + LEAD_WEIGHT * vectors[1]
    expected /= np.linalg.norm(expected)
    assert query.vector is not None
    assert np.allclose(query.vector, expected, atol=1e-5) and abs(float(np.linalg.norm(query.vector)) - 1) < 1e-5
    assert query.terms == retriever.context(search, settings).terms, "the words searched stay the search's own"
    # Without a lead the vector is the search's alone.
    assert np.allclose(retriever.context(search, settings).vector, retriever.embedder.encode_queries([search])[0])


def test_follow_up_with_history_messages_is_answered_from_the_conversation(seed_index: Index) -> None:
    alone = seed_index.ask("What did she say they should assess?")
    answer = seed_index.ask("What did she say they should assess?", history=FIRST)
    assert answer.question == "What did she say they should assess?"
    assert "Maryam Rajavi" in answer.query
    # The standalone search brings the delegations sentence first. (The reader's span for this
    # follow-up is right, "to assess the situation inside prisons", but below the no-answer
    # threshold: a known miss, see docs/benchmarks.md.)
    assert "assess the situation inside prisons" in answer.hits[0].text
    assert alone.query == ""  # without history nothing is rewritten


def test_chat_keeps_the_turns_and_resets(seed_index: Index) -> None:
    chat = seed_index.chat()
    first = chat.ask("Who called for UN visits?")
    assert "Maryam Rajavi" in first.span and first.query == ""
    second = chat.ask("What did she say they should assess?")
    assert second.query and "assess the situation inside prisons" in second.hits[0].text
    assert [m["role"] for m in chat.messages] == ["user", "assistant", "user", "assistant"]
    chat.reset()
    assert chat.messages == []
    assert chat.ask("What did she say they should assess?").query == ""


@pytest.mark.parametrize("question", ["Who won the football world cup in 2018?", "Who wrote Hamlet?",
                                      "How do I bake sourdough bread?"])
def test_a_topic_change_to_an_unanswerable_question_is_still_declined(seed_index: Index, question: str) -> None:
    chat = seed_index.chat()
    chat.ask("Who called for UN visits?")
    chat.ask("What did she say they should assess?")
    answer = chat.ask(question)
    # It has a subject of its own: searched alone, as if asked first, and declined as it would be then.
    assert answer.query == "" and not answer.found
    assert [h.chunk.id for h in answer.hits] == [h.chunk.id for h in seed_index.ask(question).hits]


# -- the CLI ---------------------------------------------------------------------------------------


def test_rag_chat_reads_stdin_and_prints_one_json_answer_per_line(seed_index: Index) -> None:
    lines = "Who called for UN visits?\nWhat did she say they should assess?\n/new\nWhat did she say they should assess?\n"
    run = subprocess.run([sys.executable, "-m", "rag.serve.cli", "chat", "--index", str(seed_index.folder), "--json"],
                         input=lines, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert len(answers) == 3
    assert "Maryam Rajavi" in answers[0]["span"]
    assert "Maryam Rajavi" in answers[1]["query"] and answers[1]["query"] != answers[1]["question"]
    assert answers[2]["query"] == answers[2]["question"]  # /new forgot the first turns


# -- with an LLM endpoint ---------------------------------------------------------------------------


def test_llm_condenses_the_follow_up_and_the_offline_resolver_is_the_fallback(seed_index: Index) -> None:
    from rag.search.conversation import condense
    from tests.answer.test_llm import ChatServer

    with ChatServer() as server:
        settings = seed_index.settings.replace(answer_mode="llm", llm_base_url=server.url, llm_model="m")
        server.reply = "What did Maryam Rajavi say international delegations should assess?"
        resolved = condense("What did she say they should assess?", FIRST, settings)
        assert resolved.search == server.reply and resolved.followup
        sent = server.requests[-1]["body"]
        assert sent["messages"][0]["role"] == "system" and "Who called for UN visits?" in sent["messages"][1]["content"]
        server.status = 500
        server.reply = "boom"
        fallback = condense("What did she say they should assess?", FIRST, settings)
        assert fallback == resolve("What did she say they should assess?", FIRST)


def test_a_question_of_its_own_on_the_same_topic_is_searched_with_the_earlier_questions() -> None:
    # doc2dial's follow-ups are mostly such questions: "Can I do it online?" is a pronoun case,
    # but "Can I renew my licence online?" after a renewal question has words of its own.
    history = [{"role": "user", "content": "How do I renew my driving licence?"},
               {"role": "assistant", "content": "Fill in form DL-1 at any office."}]
    same = resolve("Can I renew my licence online?", history)
    assert not same.followup and same.read == "Can I renew my licence online?"
    assert same.search == "How do I renew my driving licence? Can I renew my licence online?"
    other = resolve("Which president is named in the article?", history)
    assert other.lead == "Which president is named in the article?", "a change of topic leads its own search"
    leaning = resolve("And how much does it cost?", history)
    assert leaning.followup and leaning.search.endswith("How do I renew my driving licence?")


def test_the_first_of_them_and_the_latter_point_at_items_of_the_previous_answer() -> None:
    history = [{"role": "user", "content": "Which organisations have been arresting supporters of the PMOI?"},
               {"role": "assistant", "content": "the Ministry of Intelligence & Security (MOIS) and the notorious "
                                                "Islamic Revolutionary Guard Corps (IRGC) [1]"}]
    first = resolve("What campaign has the first of them been waging?", history)
    assert first.followup
    assert first.read == "What campaign has the Ministry of Intelligence & Security (MOIS) been waging?"
    assert first.search.startswith(first.read) and first.lead == "What campaign has the first of them been waging?"
    latter = resolve("And the latter?", history)
    assert latter.read == "And the notorious Islamic Revolutionary Guard Corps (IRGC)?"
    # An answer that names one thing is no list, and "the first" of something else points at nothing.
    one = [history[0], {"role": "assistant", "content": "a misinformation campaign"}]
    assert resolve("Who ran the first of them?", one).read.startswith("Who ran the first of them?")
    fruit = [{"role": "user", "content": "What grows here?"},
             {"role": "assistant", "content": "apples, pears and plums"}]
    assert resolve("When was the first case of blight?", fruit).read == "When was the first case of blight?"
    assert resolve("And the second one?", fruit).read == "And pears?"


def test_what_about_x_asks_the_previous_question_of_x() -> None:
    def after(previous: str, question: str) -> str:
        history = [{"role": "user", "content": previous}, {"role": "assistant", "content": "Ali Khamenei [1]"}]
        return resolve(question, history).read

    assert after("Who is the Supreme Leader named in the article?", "What about the president?") == \
        "Who is the president named in the article?"
    assert after("How many people has the outbreak killed in Iran?", "And what about in China?") == \
        "How many people has the outbreak killed in China?"
    assert after("What campaign has the MOIS been waging?", "What about the IRGC?") == \
        "What campaign has the IRGC been waging?"
    assert after("What is the capital of France?", "What about Paris?") == "What is the capital of Paris?"
    # Only the earlier turn's question is asked again, and a turn that asked nothing gives none.
    assert after("I have a question. Can the DMV give me a permit?", "And what about a licence?") == \
        "Can the DMV give me a licence?"
    assert after("Yes, I have a Pennsylvania licence.", "What about a permit?") != \
        "Yes, I have a Pennsylvania permit."
    # No noun phrase to swap in, or nothing it could stand for: the search of the whole conversation reads.
    for question in ("How about renewing online?", "What about the second one?"):
        resolved = resolve(question, [{"role": "user", "content": "How do I renew my licence?"},
                                      {"role": "assistant", "content": "at the office [1]"}])
        assert resolved.followup and resolved.read == resolved.search


# -- a question that stands alone is searched alone (issue 36) ----------------------------------------


GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"


@pytest.fixture(scope="module")
def guide_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.build([GUIDE], tmp_path_factory.mktemp("guide-index"))


def test_questions_asked_one_after_another_of_one_document_are_each_searched_alone(guide_index: Index) -> None:
    # The conversation a newcomer has with the demo: each question names its own subject, so the
    # earlier ones are not glued onto its search (they were: "searched: How are answers checked
    # against the documents? Does rag need an internet connection? every quote").
    chat = guide_index.chat()
    for question in ("How are answers checked against the documents?", "Does rag need an internet connection?",
                     "What is rag?", "How do I change the port?"):
        answer = chat.ask(question)
        asked_first = guide_index.ask(question)
        assert answer.query == "", f"{question!r} searched as {answer.query!r}"
        assert answer.text == asked_first.text and answer.found == asked_first.found
        assert [h.chunk.id for h in guide_index.search(question, 5, history=chat.messages[:-2])] == \
            [h.chunk.id for h in guide_index.search(question, 5)]
    assert "--port 7861" in guide_index.search("How do I change the port?", 1, history=chat.messages)[0].chunk.text


def test_real_follow_ups_of_one_document_keep_the_conversation(guide_index: Index) -> None:
    chat = guide_index.chat()
    chat.ask("How do I change the port?")
    host = chat.ask("And the host?")
    assert host.query == "How do I change the host?" and "--host 0.0.0.0" in host.hits[0].chunk.text
    chat.reset()
    chat.ask("How big are the passages?")
    that = chat.ask("Can I change that?")
    assert that.query.startswith("Can I change that?") and "passages" in that.query
    chat.reset()
    chat.ask("How do I keep the index in step with a folder?")
    offline = chat.ask("Does it work while serving?")
    assert offline.query.startswith("Does it work while serving?") and "folder" in offline.query


def test_a_topic_change_between_documents_is_searched_alone(seed_file: Path, tmp_path: Path) -> None:
    index = Index.build([seed_file, GUIDE], tmp_path / "index")
    chat = index.chat()
    assert "Maryam Rajavi" in chat.ask("Who called for UN visits?").span
    chat.ask("What did she say they should assess?")
    for question in ("How do I change the port?", "Which file types does rag index?"):
        answer, alone = chat.ask(question), index.ask(question)
        assert answer.query == "" and answer.hits[0].name == "user-guide.md"
        assert (answer.found, answer.text) == (alone.found, alone.text)
    assert "--port 7861" in index.search("How do I change the port?", 1, history=chat.messages[:4])[0].chunk.text
    # ... and back: a follow-up that points at the previous answer still reads the conversation.
    chat.reset()
    chat.ask("Which organisations have been arresting supporters of the PMOI?")
    waged = chat.ask("What campaign has the first of them been waging?")
    assert waged.query and "misinformation campaign" in waged.hits[0].chunk.text


def test_a_short_follow_up_over_several_documents_stays_with_the_one_the_conversation_is_about(tmp_path: Path
                                                                                              ) -> None:
    # doc2dial's follow-ups are mostly such questions: "What do I need to bring?" names no pronoun
    # but means the passport the person asked about, and alone would find the licence first.
    (tmp_path / "passport.md").write_text(
        "# Passports\n\n## Renewing a passport\n\nYou can renew your passport by post or online if your old "
        "passport was issued when you were 16 or over.\n\n## What to bring to a passport appointment\n\nBring "
        "your old passport, two identical photos taken in the last month, and the signed application form.\n\n"
        "## Passport fees\n\nAn adult passport costs 88 pounds online and 100 pounds by post.\n", encoding="utf-8")
    (tmp_path / "licence.md").write_text(
        "# Driving licences\n\n## Renewing a driving licence\n\nYou must renew your photocard driving licence "
        "every ten years, online with the DVLA or at a Post Office branch.\n\n## What to bring to a licence "
        "appointment\n\nBring your current photocard licence, a recent colour photo and proof of your address, "
        "such as a utility bill, to the Post Office.\n\n## Driving licence fees\n\nRenewing a licence costs 14 "
        "pounds online and 17 pounds at a Post Office.\n", encoding="utf-8")
    index = Index.build([tmp_path / "passport.md", tmp_path / "licence.md"], tmp_path / "index")
    assert index.search("What do I need to bring?", 1)[0].name == "licence.md"
    chat = index.chat()
    chat.ask("How do I renew my passport?")
    bring = chat.ask("What do I need to bring?")
    assert bring.query and bring.found and "old passport" in bring.text
    fees = chat.ask("How much are the fees?")
    assert fees.query and fees.found and "88 pounds" in fees.text
    # The passage closest to the question alone is read too, in the last place: a later question on
    # something new still finds its passage (MTRAG's follow-ups often are).
    alone = index.search("What do I need to bring?", 1)[0]
    assert alone.chunk.id in {h.chunk.id for h in bring.hits}
    assert index.search("What do I need to bring?", k=5, history=chat.messages[:2])[-1].chunk.id == alone.chunk.id
