"""The Olist public dataset's file layout: the one place that knows its file names and headers.

The headers are kept exactly as Kaggle publishes them, misspellings included (``product_name_lenght``), because
the loader must accept the real files unchanged; renaming happens in dbt staging, where it is documented.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceFile:
    """One CSV file of the dataset and the ``raw`` table it lands in."""

    entity: str
    file_name: str
    columns: tuple[str, ...]

    @property
    def raw_table(self) -> str:
        return f"raw.{self.entity}"


SOURCE_FILES: tuple[SourceFile, ...] = (
    SourceFile(
        "customers",
        "olist_customers_dataset.csv",
        (
            "customer_id",
            "customer_unique_id",
            "customer_zip_code_prefix",
            "customer_city",
            "customer_state",
        ),
    ),
    SourceFile(
        "geolocation",
        "olist_geolocation_dataset.csv",
        (
            "geolocation_zip_code_prefix",
            "geolocation_lat",
            "geolocation_lng",
            "geolocation_city",
            "geolocation_state",
        ),
    ),
    SourceFile(
        "orders",
        "olist_orders_dataset.csv",
        (
            "order_id",
            "customer_id",
            "order_status",
            "order_purchase_timestamp",
            "order_approved_at",
            "order_delivered_carrier_date",
            "order_delivered_customer_date",
            "order_estimated_delivery_date",
        ),
    ),
    SourceFile(
        "order_items",
        "olist_order_items_dataset.csv",
        (
            "order_id",
            "order_item_id",
            "product_id",
            "seller_id",
            "shipping_limit_date",
            "price",
            "freight_value",
        ),
    ),
    SourceFile(
        "order_payments",
        "olist_order_payments_dataset.csv",
        (
            "order_id",
            "payment_sequential",
            "payment_type",
            "payment_installments",
            "payment_value",
        ),
    ),
    SourceFile(
        "order_reviews",
        "olist_order_reviews_dataset.csv",
        (
            "review_id",
            "order_id",
            "review_score",
            "review_comment_title",
            "review_comment_message",
            "review_creation_date",
            "review_answer_timestamp",
        ),
    ),
    SourceFile(
        "products",
        "olist_products_dataset.csv",
        (
            "product_id",
            "product_category_name",
            "product_name_lenght",
            "product_description_lenght",
            "product_photos_qty",
            "product_weight_g",
            "product_length_cm",
            "product_height_cm",
            "product_width_cm",
        ),
    ),
    SourceFile(
        "sellers",
        "olist_sellers_dataset.csv",
        ("seller_id", "seller_zip_code_prefix", "seller_city", "seller_state"),
    ),
    SourceFile(
        "product_category_name_translation",
        "product_category_name_translation.csv",
        ("product_category_name", "product_category_name_english"),
    ),
)

BY_FILE_NAME: dict[str, SourceFile] = {source.file_name: source for source in SOURCE_FILES}
BY_ENTITY: dict[str, SourceFile] = {source.entity: source for source in SOURCE_FILES}
