"""recsys_course.graph (the knowledge graph, random walk with restart) and recsys_course.models.graph
(RandomWalk, TransE), on hand-made frames small enough to check by hand."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_course.data import toy_ratings
from recsys_course.graph import KINDS, build_graph, random_walk_with_restart, transition_matrix
from recsys_course.models.base import UnknownIdError
from recsys_course.models.graph import RandomWalk, TransE
from recsys_course.networks.graph import TransENet, margin_ranking_loss, transe_distance

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ratings():
    """toy_ratings plus Fay, who rated two films but liked none (every rating below 4)."""
    extra = pd.DataFrame({"userId": ["Fay", "Fay"], "movieId": ["A1", "R1"], "rating": [2.0, 3.0],
                          "timestamp": [100, 101]})
    return pd.concat([toy_ratings(), extra], ignore_index=True)


@pytest.fixture(scope="module")
def movies():
    """The toy films plus N1, an action film nobody rated (a cold film), and Z1 with no genre and no year."""
    return pd.DataFrame({
        "movieId": ["A1", "A2", "A3", "R1", "R2", "R3", "N1", "Z1"],
        "title": ["Heat", "Alien", "Jaws", "Amelie", "Notting Hill", "Titanic", "Ronin", "Nothing"],
        "year": pd.array([1995, 1979, 1975, 2001, 1999, 1997, 1998, pd.NA], dtype="Int64"),
        "genres": [["Action"], ["Action", "Sci-Fi"], ["Action"], ["Romance"], ["Romance"], ["Romance", "Drama"],
                   ["Action"], []],
    })


@pytest.fixture(scope="module")
def tags():
    return pd.DataFrame({"userId": [1, 2, 3, 4, 5], "movieId": ["A1", "N1", "R1", "R2", "A2"],
                         "tag": ["Car Chase", " car chase", "paris", "London", "space"]})


# ---------------------------------------------------------------------------------------------
# the graph
# ---------------------------------------------------------------------------------------------
def test_build_graph_nodes_triples_and_adjacency(ratings, movies, tags):
    g = build_graph(ratings, movies, tags)
    kinds = g.nodes["kind"].tolist()
    assert kinds == sorted(kinds, key=KINDS.index)  # users, films, genres, tags, decades in that order
    assert g.nodes.loc[g.nodes["kind"] == "film", "key"].tolist() == ["A1", "A2", "A3", "N1", "R1", "R2", "R3", "Z1"]
    assert g.nodes.loc[g.nodes["kind"] == "genre", "key"].tolist() == ["Action", "Drama", "Romance", "Sci-Fi"]
    # tags lower-cased and stripped; only "car chase" is on >= 2 films
    assert g.nodes.loc[g.nodes["kind"] == "tag", "key"].tolist() == ["car chase"]
    assert g.nodes.loc[g.nodes["kind"] == "decade", "label"].tolist() == ["1970s", "1990s", "2000s"]
    assert g.has_tags
    counts = g.triples["relation"].value_counts()
    liked = int((toy_ratings()["rating"] >= 4).sum())
    assert counts["rated"] == liked + 2  # Fay liked nothing: she keeps both ratings, so she is not isolated
    assert counts["has_genre"] == 9 and counts["has_tag"] == 2 and counts["from_decade"] == 7
    A = g.adjacency
    assert (A != A.T).nnz == 0
    assert A.sum() == 2 * len(g.triples)
    # the cold film N1 is linked to Action, car chase and the 1990s, and to no user
    n1 = g.positions("film", ["N1"])[0]
    assert sorted(g.nodes["label"].to_numpy()[A[n1].indices]) == ["1990s", "Action", "car chase"]
    z1 = g.positions("film", ["Z1"])[0]
    assert A[z1].nnz == 0  # no genre, no year, no rating: an isolated node
    assert g.positions("film", ["nope"])[0] == -1
    assert "KnowledgeGraph(" in repr(g)


def test_build_graph_options(ratings, movies):
    g = build_graph(ratings, movies, None, min_rating=None, rating_weights=True,
                    relation_weights={"has_genre": 0.5, "from_decade": 0})
    assert not g.has_tags and (g.nodes["kind"] == "tag").sum() == 0
    rated = g.triples[g.triples["relation"] == "rated"]
    assert len(rated) == len(ratings)
    assert np.allclose(np.sort(rated["weight"]), np.sort(ratings["rating"]))
    alice, a1 = g.positions("user", ["Alice"])[0], g.positions("film", ["A1"])[0]
    action = g.positions("genre", ["Action"])[0]
    assert g.adjacency[alice, a1] == 5.0 and g.adjacency[a1, action] == 0.5
    decade = g.positions("decade", [1990])[0]
    assert g.adjacency[:, decade].nnz == 0  # weight 0: dropped from the adjacency, the triples stay
    assert (g.triples["relation"] == "from_decade").sum() == 7
    only = build_graph(ratings)  # no movies: only the rated films, no metadata
    assert set(only.nodes["kind"]) == {"user", "film"}


@pytest.mark.parametrize("kwargs, match", [
    ({"relation_weights": {"acted_in": 1.0}}, "unknown relation 'acted_in'"),
    ({"relation_weights": {"rated": -1.0}}, "relation_weights"),
    ({"min_tag_count": 0}, "min_tag_count"),
    ({"min_rating": -2}, "min_rating"),
])
def test_build_graph_bad_arguments(ratings, movies, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_graph(ratings, movies, **kwargs)


def test_build_graph_bad_frames(ratings, movies):
    with pytest.raises(TypeError, match="movies must be a DataFrame"):
        build_graph(ratings, movies=[1, 2])
    with pytest.raises(ValueError, match="missing column"):
        build_graph(ratings, movies.drop(columns="genres"))
    with pytest.raises(ValueError, match="duplicated"):
        build_graph(ratings, pd.concat([movies, movies.head(1)]))
    with pytest.raises(ValueError, match="tags is missing"):
        build_graph(ratings, movies, pd.DataFrame({"movieId": ["A1"]}))


# ---------------------------------------------------------------------------------------------
# random walk with restart
# ---------------------------------------------------------------------------------------------
def path_graph():
    """a - b - c"""
    return sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))


def test_transition_is_column_stochastic():
    P = transition_matrix(path_graph()).toarray()
    assert np.allclose(P, [[0, 0.5, 0], [1, 0, 1], [0, 0.5, 0]])
    assert np.allclose(P.sum(axis=0), 1)
    lonely = transition_matrix(sp.csr_matrix((2, 2)))
    assert lonely.nnz == 0
    with pytest.raises(ValueError, match="negative"):
        transition_matrix(sp.csr_matrix(np.array([[0, -1.0], [-1.0, 0]])))


def test_walk_on_a_path_by_hand():
    # p_a = 1/2 + 1/4 p_b, p_b = 1/2 (p_a + p_c), p_c = 1/4 p_b  =>  p = (7/12, 4/12, 1/12)
    p = random_walk_with_restart(transition_matrix(path_graph()), np.array([1.0, 0, 0]), alpha=0.5, tol=1e-12,
                                 max_iter=500)
    assert p.shape == (3,)
    assert np.allclose(p, [7 / 12, 4 / 12, 1 / 12], atol=1e-10)


def test_walk_matches_closed_form_and_networkx(ratings, movies, tags):
    g = build_graph(ratings, movies, tags)
    P = transition_matrix(g.adjacency)
    alpha = 0.3
    starts = g.positions("user", ["Alice", "Carol", "Fay"])
    R = np.zeros((g.n_nodes, 3))
    R[starts, [0, 1, 2]] = 1
    X, steps = random_walk_with_restart(P, R, alpha, tol=1e-12, max_iter=1000, return_iterations=True)
    closed = alpha * np.linalg.solve(np.eye(g.n_nodes) - (1 - alpha) * P.toarray(), R)
    assert np.allclose(X, closed, atol=1e-10)
    assert np.allclose(X.sum(axis=0), 1)
    assert 10 < steps < 1000
    z1 = g.positions("film", ["Z1"])[0]
    assert (X[z1] == 0).all()  # no path: probability exactly 0
    # networkx: damping = 1 - alpha, personalisation = the restart node (on the connected part of the graph)
    graph = g.to_networkx()
    graph.remove_nodes_from(list(nx.isolates(graph)))
    pr = nx.pagerank(graph, alpha=1 - alpha, personalization={int(starts[0]): 1.0}, tol=1e-13, max_iter=1000)
    nodes = np.array(sorted(pr))
    assert np.allclose([pr[n] for n in nodes], X[nodes, 0], atol=1e-8)
    # float32: the same ranking numbers to ~1e-6
    X32 = random_walk_with_restart(P, R, alpha, tol=1e-6, dtype=np.float32)
    assert X32.dtype == np.float32 and np.allclose(X32, closed, atol=1e-5)


def test_walk_bad_inputs():
    P = transition_matrix(path_graph())
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        random_walk_with_restart(P, np.array([1.0, 0, 0]), alpha=1.0)
    with pytest.raises(ValueError, match="rows"):
        random_walk_with_restart(P, np.ones(4) / 4)
    with pytest.raises(ValueError, match="without any edge"):
        random_walk_with_restart(transition_matrix(sp.csr_matrix((3, 3))), np.array([1.0, 0, 0]))
    with pytest.raises(ValueError, match="tol"):
        random_walk_with_restart(P, np.array([1.0, 0, 0]), tol=0)


# ---------------------------------------------------------------------------------------------
# RandomWalk
# ---------------------------------------------------------------------------------------------
def test_random_walk_equals_the_walk_and_scores_cold_films(ratings, movies, tags):
    model = RandomWalk(movies=movies, tags=tags, restart=0.4, beta=0.0, tol=1e-9).fit(ratings)
    g = model.graph_
    P = transition_matrix(g.adjacency).toarray()
    start = np.zeros(g.n_nodes)
    start[g.positions("user", ["Bob"])[0]] = 1
    p = 0.4 * np.linalg.solve(np.eye(g.n_nodes) - 0.6 * P, start)
    assert np.allclose(model.visit_probabilities(["Bob"])[0], p, atol=1e-6)
    films = g.positions("film", model.item_ids_)
    assert np.allclose(model.score(["Bob"])[0], p[films], atol=1e-6)
    # the cold film N1 (not in train) is reached through Action / car chase / 1990s; Z1 has no path
    pred = model.predict(["Bob", "Bob", "Bob"], ["N1", "Z1", "unknown"])
    assert pred[0] == pytest.approx(p[g.positions("film", ["N1"])[0]], abs=1e-6) and pred[0] > 0
    assert pred[1] == 0 and pred[2] == 0
    assert "N1" not in model.item_ids_
    # Bob likes action: the action films he has not rated come first
    recs = model.recommend(["Bob"], k=2)
    assert recs["movieId"].tolist()[0] == "A3"


def test_random_walk_degree_correction(ratings, movies, tags):
    plain = RandomWalk(movies=movies, tags=tags, tol=1e-9, beta=0.0).fit(ratings)
    fixed = RandomWalk(movies=movies, tags=tags, tol=1e-9, beta=0.5).fit(ratings)
    d = plain.graph_.degree[plain.catalogue_nodes_]
    assert np.allclose(fixed.score(["Eve"]), plain.score(["Eve"]) / d ** 0.5)


def test_random_walk_errors(ratings, movies):
    model = RandomWalk(movies=movies).fit(ratings)
    with pytest.raises(UnknownIdError, match="absent from"):
        model.predict(["Zed"], ["A1"])
    with pytest.raises(UnknownIdError):
        model.recommend(["Zed"])
    cut = RandomWalk(movies=movies, relation_weights={"rated": 0.0}).fit(ratings)
    with pytest.raises(ValueError, match="without any edge"):
        cut.score(["Alice"])
    for bad, match in [({"restart": 0.0}, "restart"), ({"beta": -1}, "beta"), ({"max_iter": 0}, "max_iter")]:
        with pytest.raises(ValueError, match=match):
            RandomWalk(movies=movies, **bad).fit(ratings)
    with pytest.raises(TypeError, match="movies=ml.movies"):
        RandomWalk(movies="movies.csv").fit(ratings)


def test_random_walk_ties_go_to_the_smaller_movie_id():
    # u1 liked a; b and c are both one step from u2 only, and unreachable from u1: score 0, tied
    frame = pd.DataFrame({"userId": [1, 2, 2], "movieId": [10, 30, 20], "rating": [5.0, 5.0, 5.0],
                          "timestamp": [0, 1, 2]})
    model = RandomWalk().fit(frame)
    assert model.score([1])[0].tolist()[1:] == [0.0, 0.0]
    assert model.recommend([1], k=5)["movieId"].tolist() == [20, 30]


# ---------------------------------------------------------------------------------------------
# TransE
# ---------------------------------------------------------------------------------------------
def test_transe_distance_and_loss_by_hand():
    h, r = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    t, t_bad = torch.tensor([[1.0, 1.0]]), torch.tensor([[1.5, 0.5]])
    pos, neg = transe_distance(h, r, t), transe_distance(h, r, t_bad)
    assert pos.item() == pytest.approx(1.0) and neg.item() == pytest.approx(np.sqrt(0.5))
    assert margin_ranking_loss(pos, neg[:, None], 1.0).item() == pytest.approx(2 - np.sqrt(0.5))
    assert margin_ranking_loss(pos, neg[:, None] + 5, 1.0).item() == 0  # far enough: no loss
    net = TransENet(4, 2, 3, torch.Generator().manual_seed(0))
    assert torch.allclose(net.E.norm(dim=1), torch.ones(4)) and torch.allclose(net.R.norm(dim=1), torch.ones(2))
    d = net.distance(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    assert d.item() == pytest.approx((net.E[0] + net.R[1] - net.E[2]).norm().item())


def test_transe_fits_scores_and_is_deterministic(ratings, movies, tags):
    kw = dict(movies=movies, tags=tags, n_factors=8, n_epochs=3, batch_size=8, verbose=False, seed=3)
    a = TransE(**kw).fit(ratings)
    b = TransE(**kw).fit(ratings)
    assert np.array_equal(a.entity_vectors_, b.entity_vectors_)
    assert not np.array_equal(a.entity_vectors_, TransE(**{**kw, "seed": 4}).fit(ratings).entity_vectors_)
    assert a.relations_ == ("rated", "has_genre", "has_tag", "from_decade")
    assert len(a.loss_) == 3 and np.isfinite(a.loss_).all()
    g = a.graph_
    u, f = g.positions("user", ["Dan"])[0], g.positions("film", ["A2"])[0]
    by_hand = -np.linalg.norm(a.entity_vectors_[u] + a.relation_vector("rated") - a.entity_vectors_[f])
    assert a.predict(["Dan"], ["A2"])[0] == pytest.approx(by_hand)
    assert a.score(["Dan"])[0, a.item_positions(["A2"])[0]] == pytest.approx(by_hand)
    cold = a.predict(["Dan", "Dan"], ["N1", "nope"])
    assert np.isfinite(cold[0]) and cold[1] == -np.inf
    assert a.recommend(["Dan"], k=3)["movieId"].isin(a.item_ids_).all()


def test_transe_errors_and_early_stopping(ratings, movies):
    model = TransE(movies=movies, n_factors=4, n_epochs=2, batch_size=8, verbose=False).fit(ratings)
    with pytest.raises(ValueError, match="'has_tag' has no triple.*tags=ml.tags"):
        model.relation_vector("has_tag")
    with pytest.raises(ValueError, match="'acted_in' has no triple"):
        model.triple_scores([0], "acted_in", [1])
    with pytest.raises(ValueError, match="node positions"):
        model.triple_scores([0], "rated", [10_000])
    with pytest.raises(UnknownIdError):
        model.predict(["Zed"], ["A1"])
    for bad, match in [({"margin": 0}, "margin"), ({"n_negatives": 0}, "n_negatives"), ({"lr": -1}, "lr")]:
        with pytest.raises(ValueError, match=match):
            TransE(movies=movies, verbose=False, **bad).fit(ratings)
    stopped = TransE(movies=movies, n_factors=4, n_epochs=3, batch_size=8, val_size=1, patience=1,
                     verbose=False).fit(ratings)
    assert stopped.history_ is not None and 1 <= stopped.best_epoch_ <= 3
