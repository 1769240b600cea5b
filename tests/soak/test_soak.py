"""The soak's judgements on synthetic figures: a leak as small as the soak claims to catch is
caught, allocator-like noise is not called a leak, and a lost resolve, a lost trigger or a
flap that paged nobody is reported. Pure: no servers, runs in a second."""
import random

import soak

RSS_BOUND_KIB = 128  # tests/soak/run's RSS_GROWTH_BOUND_KIB
SECONDS = 600       # the documented 10-minute run, one sample a second


def series(leak_kib_per_s, seed=1, base=14000):
    """RSS samples with warm-up growth, noise of a few pages, and one 512 KiB arena step in
    the warm-up, plus a steady leak."""
    r = random.Random(seed)
    out = []
    for t in range(SECONDS):
        warm = 2048 * min(1.0, t / 60)  # 2 MiB grown in the first minute
        step = 512 if t > 100 else 0
        out.append({"t": float(t), "anon_kib": base + warm + step + leak_kib_per_s * t +
                    r.choice([-12, -8, -4, 0, 0, 4, 8, 12])})
    return out


def test_a_leak_of_1_kib_per_second_over_10_minutes_exceeds_the_bound():
    g = soak.growth(series(1.0), "anon_kib")
    assert g > RSS_BOUND_KIB, g  # 200 KiB between the thirds' means


def test_noise_and_warm_up_without_a_leak_stay_within_the_bound():
    for seed in range(20):
        g = soak.growth(series(0.0, seed), "anon_kib")
        assert abs(g) < 16, (seed, g)


def test_slope_reports_the_leak_rate_per_minute():
    assert 55 < soak.slope_per_minute(series(1.0), "anon_kib") < 65


def firing(key, at, status="firing", node="pg2", condition="node_down", cluster="orders"):
    return {"arrived": at + 1.1, "key": key, "status": status, "starts_at": at,
            "cluster": cluster, "node": node, "condition": condition}


def test_every_firing_paired_with_its_resolve_is_clean():
    firings, problems = soak.account([firing("a", 10), firing("b", 11), firing("a", 10, "resolved"),
                                      firing("b", 11, "resolved"), firing("a", 30),
                                      firing("a", 30, "resolved")])
    assert problems == [] and len(firings) == 3
    assert all(f["resolved_arrived"] is not None for f in firings)


def test_a_lost_resolve_a_lost_trigger_and_a_double_firing_are_reported():
    _, problems = soak.account([firing("a", 10), firing("b", 11, "resolved"), firing("c", 12),
                                firing("c", 20)])
    assert len(problems) == 4, problems
    assert any("a: fired" in p and "never resolved" in p for p in problems)
    assert any(p.startswith("b: resolved") for p in problems)
    assert any(p.startswith("c: firing again") for p in problems)


def test_a_firing_missed_during_a_receiver_outage_may_arrive_with_its_resolve():
    # b fired at 11 and resolved while the receiver was down (10-20): one resolved alert
    # carrying its startsAt is its whole story. The same outside any outage is a lost trigger.
    resolved_late = dict(firing("b", 11, "resolved"), arrived=21.0)
    firings, problems = soak.account([resolved_late], outages=[(10.0, 20.0)])
    assert problems == [] and len(firings) == 1 and firings[0]["resolved_arrived"] == 21.0
    _, problems = soak.account([resolved_late], outages=[(30.0, 40.0)])
    assert len(problems) == 1 and problems[0].startswith("b: resolved"), problems


def flap(node, started, held, expect="node_down", cluster="orders"):
    f = soak.Flap(cluster, node, "stop", "start", expect, held)
    f.started, f.applied = started, started + 0.5
    f.undoing, f.restored = f.applied + held, f.applied + held + 1
    return f


def test_a_long_flap_without_its_condition_is_missed_and_a_firing_without_a_flap_unexplained():
    flaps = [flap("pg2", 100, 7), flap("pg3", 120, 7), flap("pg2", 140, 0.5)]
    firings, _ = soak.account([firing("k2", 103), firing("k2", 103, "resolved"),
                               firing("k3", 300, node="pg3"),
                               firing("k3", 300, "resolved", node="pg3")])
    assert soak.missed_flaps(flaps, firings, 5.0) == [flaps[1]]  # the short one need not page
    explained, unexplained = soak.attribute(firings, flaps, 20)
    assert [f["key"] for f in unexplained] == ["k3"]


def test_a_logged_firing_the_receiver_never_got_is_undelivered():
    log = "\n".join([
        'ts=2026-01-01T00:00:10.000Z level=info msg="alert firing" dedup_key=k1 severity=x',
        'ts=2026-01-01T00:00:20.000Z level=info msg="alert resolved" dedup_key=k1',
        'ts=2026-01-01T00:00:30.000Z level=info msg="alert firing" dedup_key=k2 severity=x',
        'ts=2026-01-01T00:00:30.500Z level=info msg="alert resolved" dedup_key=k2',
        'ts=2026-01-01T00:00:40.000Z level=info msg="alert firing" dedup_key=k3 severity=x'])
    logged = soak.logged_firings(log)
    assert [(k, r is None) for k, _, r in logged] == [("k1", False), ("k2", False),
                                                       ("k3", True)]
    t10 = logged[0][1]
    firings, _ = soak.account([firing("k1", t10), firing("k1", t10, "resolved")])
    # k2 lasted 0.5 s: within group_wait, nobody is told. k3 is still firing: it must be told.
    assert [k for k, _, _ in soak.undelivered(logged, firings, 3.5)] == ["k3"]


def test_a_firing_folded_into_an_earlier_one_of_the_same_alert_is_undelivered():
    # k1 fired at 10, resolved at 20 and fired again at 30; the receiver heard only the first
    # firing, open until 40: it never heard the resolve at 20 nor the trigger at 30.
    log = "\n".join([
        'ts=2026-01-01T00:00:10.000Z level=info msg="alert firing" dedup_key=k1 severity=x',
        'ts=2026-01-01T00:00:20.000Z level=info msg="alert resolved" dedup_key=k1',
        'ts=2026-01-01T00:00:30.000Z level=info msg="alert firing" dedup_key=k1 severity=x',
        'ts=2026-01-01T00:00:40.000Z level=info msg="alert resolved" dedup_key=k1'])
    logged = soak.logged_firings(log)
    t10, t30 = logged[0][1], logged[1][1]
    resolved_late = dict(firing("k1", t10, "resolved"), arrived=t10 + 31)
    folded, _ = soak.account([firing("k1", t10), resolved_late])
    assert soak.undelivered(logged, folded, 3.5) == [logged[1]]
    both, problems = soak.account([firing("k1", t10), firing("k1", t10, "resolved"),
                                   firing("k1", t30), firing("k1", t30, "resolved")])
    assert problems == [] and soak.undelivered(logged, both, 3.5) == []
