{{ config(alias='orders') }}

{{ quarantined_rows(ref('base_olist__orders')) }}
