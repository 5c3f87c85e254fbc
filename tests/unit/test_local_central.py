"""The demo's central service, without starting it: the master data it loads from the product list, and the local
trace page of a printed stamp."""

from __future__ import annotations

from app.local_central import masterdata, producer_id, trace_url
from central.masterdata import MasterData
from station.config import DEFAULT_CONFIG, load_products
from station.domain import Product


def test_the_shipped_products_make_master_data_central_load_accepts() -> None:
    products = load_products(DEFAULT_CONFIG.parent / "products.yaml")
    data = MasterData.model_validate(masterdata(products))
    assert [p.gtin for p in data.products] == [p.gtin for p in products]
    assert {p.name for p in data.producers} == {p.producer for p in products}
    known = {p.id for p in data.producers}
    assert all(p.producer in known for p in data.products)
    assert data.batches == []          # a batch is the station's to publish when it opens


def test_a_producer_is_named_as_the_station_names_it_and_nothing_is_made_up() -> None:
    product = Product(gtin="08938603001013", name="Mè xừng 250g", producer="Cơ sở Mè xừng Thông Hương Đông Ba",
                      region="TP Huế")
    assert producer_id(product) == "co-so-me-xung-thong-huong-dong-ba"
    (producer,) = masterdata([product])["producers"]
    assert producer["address"] is None and producer["phone"] is None   # the region is not the producer's address


def test_a_printed_stamp_opens_on_the_local_server() -> None:
    link = "https://truyxuat.hue.example.vn/01/08938603001013/10/L261203/21/40SAG2L04H?17=270601"
    assert trace_url(link, "truyxuat.hue.example.vn", "http://127.0.0.1:8080") == \
        "http://127.0.0.1:8080/01/08938603001013/10/L261203/21/40SAG2L04H?17=270601"
    # a resolver with a path of its own: the path goes too (serve answers /01/… on any host)
    assert trace_url("https://example.vn/tx/01/08938603001013/21/A1", "example.vn/tx", "http://127.0.0.1:9") == \
        "http://127.0.0.1:9/01/08938603001013/21/A1"
    assert trace_url("https://elsewhere.vn/01/1/21/A", "example.vn", "http://127.0.0.1:9") == \
        "https://elsewhere.vn/01/1/21/A"
