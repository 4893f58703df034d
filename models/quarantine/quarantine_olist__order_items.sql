{{ config(alias='order_items') }}

{{ quarantined_rows(ref('base_olist__order_items')) }}
