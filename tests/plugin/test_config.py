"""Configuration: ``configure(c)`` sets every role, traits read the environment when used."""

from __future__ import annotations

from nbgrader.exchange import ExchangeFactory, abc
from nbgrader.exchange.abc import Exchange as ABCExchange
from traitlets.config import Config

from nbgrader_exchange import ROLES, configure
from nbgrader_exchange.exchange import TIMESTAMP_FORMAT, Exchange


def test_configure_sets_every_exchange_factory_role():
    c = Config()
    configure(c, url="http://exchange:8000", token="t0k", timeout=5.0, retries=1)
    factory = ExchangeFactory(config=c)
    for role, path in ROLES.items():
        cls = getattr(factory, role)
        assert f"{cls.__module__}.{cls.__name__}" == path
    assert issubclass(factory.submit, abc.ExchangeSubmit)
    assert issubclass(factory.list, abc.ExchangeList)
    exchange = factory.Submit(coursedir=None, authenticator=None, config=c)
    assert (exchange.url, exchange.token, exchange.timeout, exchange.retries) == (
        "http://exchange:8000",
        "t0k",
        5.0,
        1,
    )
    # Every role nbgrader's factory knows is covered.
    configurable = {name for name in ExchangeFactory.class_trait_names() if name in ROLES}
    assert configurable == set(ROLES)


def test_url_and_token_come_from_the_environment_when_used(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXCHANGE_TOKEN", raising=False)
    monkeypatch.setenv("NBGRADER_EXCHANGE_URL", "http://from-env:8000")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token")
    assert (Exchange().url, Exchange().token) == ("http://from-env:8000", "hub-token")
    monkeypatch.setenv("NBGRADER_EXCHANGE_TOKEN", "own-token")
    assert Exchange().token == "own-token"


def test_config_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXCHANGE_URL", "http://from-env:8000")
    c = Config()
    configure(c, url="http://from-config:8000")
    assert Exchange(config=c).url == "http://from-config:8000"


def test_every_trait_documents_itself():
    for name, trait in Exchange.class_traits(config=True).items():
        assert trait.help, name


def test_timestamp_format_is_nbgraders():
    assert TIMESTAMP_FORMAT == ABCExchange.timestamp_format.default_value
