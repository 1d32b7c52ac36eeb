"""The dev stack hands out the URL of the C driver (mysqlclient's MySQLdb) when it can be imported, and
pymysql's when it cannot: both are supported values of DATABASE_URL."""
from __future__ import annotations

import sys

from orders_app import devstack


def test_the_dev_stack_database_url_selects_the_c_driver_when_mysqldb_can_be_imported(tmp_path):
    assert devstack.database_url(tmp_path, 3306).startswith("mysql+mysqldb://orders:")


def test_the_dev_stack_database_url_falls_back_to_pymysql_when_mysqldb_cannot_be_imported(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # what `import MySQLdb` meets without the C library
    assert devstack.database_url(tmp_path, 3306).startswith("mysql+pymysql://orders:")
