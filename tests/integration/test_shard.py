"""Sharding: instances 0/2 and 1/2 over ten clusters watch disjoint sets whose union is all ten."""
from conftest import wait_for


def test_two_shards_split_ten_clusters(pg, lagwatch_factory):
    names = ["fleet-%02d" % i for i in range(10)]
    clusters = "".join(pg.toml(cluster=n, interval="1s", timeout="800ms") for n in names)
    shards = []
    for index in range(2):
        # [server] is written by the factory; the shard key goes in the same table.
        lw = lagwatch_factory(clusters, server_extra='shard = "%d/2"' % index)
        shards.append(lw)
    watched = []
    for lw in shards:
        got = wait_for("clusters listed", lambda: [c["cluster"] for c in lw.clusters()], 10)
        watched.append(set(got))
        for name in got:
            assert lw.value("lagwatch_node_up", cluster=name, node="pg1") is not None
    assert watched[0] and watched[1], watched
    assert not (watched[0] & watched[1]), "a cluster is watched twice: %s" % (watched[0] & watched[1])
    assert watched[0] | watched[1] == set(names)
