from hypothesis import given, strategies as st

from nbchat.core.budget import fit_budget, truncate_to_tokens, truncation_note
from nbchat.core.tokens import EstimateCounter

needs_lists = st.lists(st.integers(min_value=0, max_value=200_000), min_size=0, max_size=12)
budgets = st.integers(min_value=0, max_value=300_000)


@given(needs_lists, budgets)
def test_water_filling_never_exceeds_the_budget(needs, budget):
    grants = fit_budget(needs, budget)
    assert sum(grants) <= budget
    assert all(0 <= g <= n for g, n in zip(grants, needs))


@given(needs_lists, budgets)
def test_water_filling_never_cuts_a_file_that_fits_its_even_share(needs, budget):
    grants = fit_budget(needs, budget)
    if needs:
        share = budget // len(needs)
        for need, grant in zip(needs, grants):
            if need <= share:
                assert grant == need


@given(needs_lists, budgets, st.integers(min_value=1, max_value=50_000))
def test_water_filling_is_monotone_in_the_budget(needs, budget, extra):
    smaller = fit_budget(needs, budget)
    larger = fit_budget(needs, budget + extra)
    assert all(b >= a for a, b in zip(smaller, larger))


@given(needs_lists, budgets)
def test_water_filling_uses_the_whole_budget_when_files_need_it(needs, budget):
    grants = fit_budget(needs, budget)
    if sum(needs) >= budget and needs:
        assert budget - sum(grants) < len(needs)  # only rounding is left over
    else:
        assert grants == needs


def test_budget_gives_leftover_to_the_largest():
    # A 1k note and a 100k PDF sharing 64k: the note keeps all, the PDF gets the rest.
    assert fit_budget([1_000, 100_000], 64_000) == [1_000, 63_000]
    # An even split would have given the PDF only 32k.
    assert fit_budget([1_000, 100_000, 50_000], 64_000) == [1_000, 31_500, 31_500]


def test_truncation_fits_the_limit_and_says_so_visibly():
    counter = EstimateCounter()
    text = "\n".join(f"line {i} of a long report about budgets and tokens" for i in range(3000))
    total = counter.count(text)
    cut, used = truncate_to_tokens(text, total, 500, counter)
    assert used <= 500
    assert counter.count(cut) == used
    assert cut.endswith("tokens]")
    assert "[truncated: first ~" in cut and f"of ~{total:,} tokens]" in cut
    assert cut.startswith("line 0 of a long report")
    assert used > 400  # the cut uses most of what it was given


def test_truncation_note_reads_as_the_spec_says():
    assert truncation_note(1200, 50000) == "[truncated: first ~1,200 of ~50,000 tokens]"
