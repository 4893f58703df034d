"""The executive dashboard: how the business is doing, from the marts alone.

Served by ``python -m runner dashboard`` (marimo's run mode, read-only). It reads only ``mart.*`` relations and,
for freshness, the runner's ledger (``metadata``); never core, staging or raw. Every figure is computed the way
the marts' column descriptions define it (models/marts/_marts__models.yml), by the plain functions of
``runner/figures.py``: this page only lays them out. Filters come from the page, and their first values from the
address: ``?from=2017-02&to=2017-03&state=SP``.

Values from the database or from errors reach the page through ``dashboard.html_text`` (escaped, in markup the
page writes), never through an f-string into ``mo.Html`` nor into ``mo.md``: a state or a category made of markup
would otherwise run script in the viewer's browser.
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full", app_title="Olist executive dashboard")


@app.cell
def _():
    from datetime import date
    from decimal import Decimal

    import altair as alt
    import marimo as mo

    from runner import dashboard, figures
    from runner.errors import RunnerError

    return Decimal, RunnerError, alt, dashboard, date, figures, mo


@app.cell
def _(Decimal, RunnerError, dashboard, date, mo):
    # Every read borrows one of the few connections all pages share (read-only, as the dashboard's SELECT-only
    # role), with the settings the runner uses (OLIST_DW_DSN, else the embedded server).
    _problem = None
    try:
        threshold = dashboard.configured_stale_after()
        dashboard.query("select 1")  # unreachable: one message here rather than an error in every panel
    except RunnerError as _error:
        _problem = str(_error)
    mo.stop(
        _problem is not None,
        mo.callout(
            mo.Html(
                dashboard.html_text("<b>The dashboard cannot reach the warehouse.</b> {problem}", problem=_problem)
            ),
            kind="danger",
        ),
    )

    def read(figure, *arguments):
        """One figure of runner/figures.py, on a connection borrowed for it."""
        with dashboard.borrowed() as connection:
            return figure(connection, *arguments)

    def plain(rows: list[dict]) -> list[dict]:
        """The rows as JSON values for a chart's inline data: numbers as floats, days as ISO dates."""

        def _value(value: object) -> object:
            if isinstance(value, Decimal):
                return float(value)
            return value.isoformat() if isinstance(value, date) else value

        return [{key: _value(value) for key, value in row.items()} for row in rows]

    return plain, read, threshold


@app.cell
def _(dashboard, mo, threshold):
    # Freshness: the watermark and the last successful run, from the runner's ledger.
    with dashboard.borrowed() as _connection:
        fresh = dashboard.freshness(_connection, threshold)

    def _hours(delta):
        hours = delta.total_seconds() / 3600
        if hours < 1:
            return f"{hours * 60:.0f} minutes"
        return f"{hours:,.1f} hours" if hours < 48 else f"{hours / 24:,.1f} days"

    _watermark = f"{fresh.watermark:%Y-%m-%d %H:%M}" if fresh.watermark else "not set"
    _last = f"{fresh.last_success_at:%Y-%m-%d %H:%M %Z}" if fresh.last_success_at else "never"
    _line = dashboard.html_text(
        "Data up to the watermark <b data-freshness='watermark'>{watermark}</b> (purchase time, São Paulo)"
        " &middot; last successful run <b data-freshness='last-success'>{last}</b>{ago}",
        watermark=_watermark,
        last=_last,
        ago=f" ({_hours(fresh.lag)} ago)" if fresh.lag is not None else "",
    )
    if fresh.is_stale:
        _why = (
            "no window run has succeeded yet"
            if fresh.lag is None
            else f"the last successful run is older than {_hours(fresh.stale_after)}"
        )
        _banner = mo.callout(
            mo.Html(
                dashboard.html_text("<div data-freshness='stale'><b>Stale data:</b> {why}. ", why=_why)
                + _line
                + ". Run <code>python -m runner run</code> to bring the marts up to date.</div>"
            ),
            kind="warn",
        )
    else:
        _banner = mo.Html("<div data-freshness='fresh' style='color:#555'>" + _line + ".</div>")
    mo.vstack([mo.md("# Olist executive dashboard"), _banner])
    return


@app.cell
def _(figures, mo, read):
    # The marts this page reads (the dbt exposure executive_dashboard depends on exactly these).
    _missing, _any = read(figures.missing_marts)
    mo.stop(
        bool(_missing),
        mo.callout(
            mo.Html(
                "<div data-empty-warehouse><b>The warehouse has no marts yet</b>: "
                + (f"missing {', '.join(_missing)}" if _any else "the mart schema does not exist")
                + ". Build them with <code>python -m runner demo</code>, or <code>python -m runner load</code>"
                " and <code>python -m runner run</code>, then reload this page.</div>"
            ),
            kind="warn",
        ),
    )
    months = read(figures.months)
    mo.stop(
        not months,
        mo.callout(
            mo.Html(
                "<div data-empty-warehouse><b>The marts hold no orders yet.</b> Load the Olist files and run a window"
                " (<code>python -m runner load --source data/</code>, <code>python -m runner run</code>).</div>"
            ),
            kind="warn",
        ),
    )
    states = read(figures.customer_states)
    return months, states


@app.cell
def _(mo, months, states):
    # Filters; their first values may come from the address (?from=YYYY-MM&to=YYYY-MM&state=XX).
    ALL_STATES = "All states"
    _labels = [month.strftime("%Y-%m") for month in months]
    _params = mo.query_params()

    def _pick(value, choices, default):
        return value if value in choices else default

    period_from = mo.ui.dropdown(_labels, value=_pick(_params.get("from"), _labels, _labels[-1]), label="From month")
    period_to = mo.ui.dropdown(_labels, value=_pick(_params.get("to"), _labels, _labels[-1]), label="To month")
    state = mo.ui.dropdown(
        [ALL_STATES, *states], value=_pick(_params.get("state"), states, ALL_STATES), label="Customer state"
    )
    mo.hstack([period_from, period_to, state], justify="start", gap=2)
    return ALL_STATES, period_from, period_to, state


@app.cell
def _(ALL_STATES, dashboard, date, figures, mo, period_from, period_to, state):
    # The chosen period, whole months, and the previous period of the same length right before it.
    def _month(label):
        year, month = label.split("-")
        return date(int(year), int(month), 1)

    period = figures.Period.of_months(_month(period_from.value), _month(period_to.value))
    previous = period.previous
    chosen_state = None if state.value == ALL_STATES else state.value
    where = chosen_state or "all states"
    mo.Html(
        dashboard.html_text(
            "<p>Period <b>{period}</b> ({length} month{plural}), compared with <b>{previous}</b>; {where}.</p>",
            period=period.label,
            length=period.months,
            plural="s" if period.months > 1 else "",
            previous=previous.label,
            where=where,
        )
    )
    return chosen_state, period, previous, where


@app.cell
def _(chosen_state, figures, period, previous, read):
    # The headline figures: the period's and, when the data covers all of it, the previous period's.
    headline = read(figures.headline, period.bounds)
    _before = read(figures.headline, previous.bounds)
    # A previous period the data covers only in part is no basis for a change.
    headline_before = _before if _before.months == previous.months else None
    state_gmv = read(figures.state_gmv, period.bounds, chosen_state) if chosen_state else None
    state_gmv_before = (
        read(figures.state_gmv, previous.bounds, chosen_state) if chosen_state and headline_before else None
    )
    return headline, headline_before, state_gmv, state_gmv_before


@app.cell
def _(dashboard, mo, previous):
    # A KPI card, and the change it shows against the previous period.
    def change(now, before, kind):
        if now is None or before is None:
            return "no full previous period in the data" if before is None else ""
        if kind == "points":
            return f"{now - before:+.2f} points vs {previous.label}"
        if before == 0:
            return "previous period was zero"
        return f"{(now - before) / before * 100:+.1f}% vs {previous.label}"

    def card(key, label, value, text, change):
        return mo.Html(
            dashboard.html_text(
                "<div data-kpi='{key}'"
                " style='border:1px solid #ddd;border-radius:8px;padding:12px 16px;min-width:210px'>"
                "<div style='color:#666;font-size:0.85em'>{label}</div>"
                "<div data-kpi-value style='font-size:1.6em;font-weight:600'>{shown}</div>"
                "<div style='color:#666;font-size:0.8em'>{change}</div></div>",
                key=key,
                label=label,
                shown=text if value is not None else "n/a",
                change=change,
            )
        )

    return card, change


@app.cell
def _(card, change, chosen_state, dashboard, headline, headline_before, mo, state_gmv, state_gmv_before):
    # Headline KPIs, from mart_executive_kpis (which has no state): sums of its columns, ratios of the sums.
    def _before(name):
        return getattr(headline_before, name) if headline_before else None

    _aov, _review = headline.average_order_value, headline.mean_review_score
    _cards = [
        card(
            "gmv",
            "GMV (all states)",
            headline.gross_merchandise_value,
            f"R$ {headline.gross_merchandise_value:,.2f}",
            change(headline.gross_merchandise_value, _before("gross_merchandise_value"), "%"),
        ),
        card(
            "orders",
            "Orders (all states)",
            headline.orders,
            f"{headline.orders:,}",
            change(headline.orders, _before("orders"), "%"),
        ),
        card(
            "aov",
            "Average order value",
            _aov,
            f"R$ {_aov or 0:,.2f}",
            change(_aov, _before("average_order_value"), "%"),
        ),
        card(
            "review",
            "Mean review score",
            _review,
            f"{_review or 0:.2f}",
            change(_review, _before("mean_review_score"), "points"),
        ),
    ]
    if chosen_state:
        _cards.append(
            card(
                "state-gmv",
                f"GMV in {chosen_state}",
                state_gmv,
                f"R$ {state_gmv:,.2f}",
                change(state_gmv, state_gmv_before, "%"),
            )
        )
    _note = (
        "Orders count every status; GMV is the billable orders' item prices (freight excluded); the average order"
        " value is GMV per billable order; the review score is the mean of every review of the period's orders."
        + (
            f" mart_executive_kpis has no state, so the first four figures are for all states; GMV in"
            f" {chosen_state} comes from mart_revenue. The marts have no exact order count per state"
            " (mart_revenue counts an order once per product category)."
            if chosen_state
            else ""
        )
    )
    mo.vstack(
        [
            mo.hstack(_cards, justify="start", gap=1, wrap=True),
            mo.Html(dashboard.html_text("<p><small>{note}</small></p>", note=_note)),
        ]
    )
    return


@app.cell
def _(alt, chosen_state, dashboard, figures, mo, period, plain, previous, read):
    # Monthly GMV and orders over the previous and the chosen period.
    _rows = plain(read(figures.monthly_sales, (previous.start, period.end), chosen_state))
    _text = (
        f"GMV of {chosen_state} per month (mart_revenue). Orders per month are shown for all states only:"
        " the marts have no exact order count per state."
        if chosen_state
        else "GMV (bars) and orders (line) per month, all states (mart_executive_kpis)."
    )
    for _row in _rows:
        _row["period"] = period.label if _row["month"] >= period.start.isoformat() else previous.label
        _row["label"] = _row["month"][:7]
    _base = alt.Chart(alt.Data(values=_rows)).encode(x=alt.X("label:O", title="month", axis=alt.Axis(labelAngle=0)))
    _bars = _base.mark_bar(opacity=0.8, size=40).encode(
        y=alt.Y("gmv:Q", title="GMV (BRL)"),
        color=alt.Color(
            "period:N",
            title="period",
            scale=alt.Scale(domain=[previous.label, period.label], range=["#bab0ac", "#4c78a8"]),
        ),
        tooltip=["label:O", alt.Tooltip("gmv:Q", format=",.2f")],
    )
    _chart = _bars
    if not chosen_state:
        _line = _base.mark_line(point=True, color="#333").encode(
            y=alt.Y("orders:Q", title="orders"), tooltip=[alt.Tooltip("orders:Q", format=",")]
        )
        _chart = alt.layer(_bars, _line).resolve_scale(y="independent")
    mo.vstack(
        [
            mo.md("## Monthly GMV and orders"),
            mo.Html(dashboard.html_text("<p>{text}</p>", text=_text)),
            _chart.properties(width="container", height=260) if _rows else mo.md("_No sales in these months._"),
        ]
    )
    return


@app.cell
def _(alt, chosen_state, dashboard, figures, mo, period, plain, read):
    # Revenue by customer state, ranked (mart_revenue).
    _rows = read(figures.revenue_by_state, period.bounds)
    state_highlight = (
        alt.condition(alt.datum.customer_state == chosen_state, alt.value("#d62728"), alt.value("#4c78a8"))
        if chosen_state
        else alt.value("#4c78a8")
    )
    _chart = (
        alt.Chart(alt.Data(values=plain(_rows)))
        .mark_bar()
        .encode(
            x=alt.X("gmv:Q", title="GMV (BRL)"),
            y=alt.Y("customer_state:N", sort="-x", title="customer state"),
            color=state_highlight,
            tooltip=["customer_state:N", alt.Tooltip("gmv:Q", format=",.2f")],
        )
        .properties(width="container", height=max(120, 18 * len(_rows)))
    )
    revenue_by_state = mo.vstack(
        [
            mo.md("## Revenue by state"),
            mo.Html(
                dashboard.html_text(
                    "<p>Where is revenue made? GMV by customer state in the period, ranked{highlight}.</p>",
                    highlight=f"; {chosen_state} highlighted" if chosen_state else "",
                )
            ),
            _chart if _rows else mo.md("_No sales in the period._"),
        ]
    )
    return revenue_by_state, state_highlight


@app.cell
def _(alt, chosen_state, dashboard, figures, mo, period, plain, read, where):
    # Revenue by product category, the top 15 (mart_revenue).
    _rows = read(figures.revenue_by_category, period.bounds, chosen_state)
    _top = _rows[:15]
    _chart = (
        alt.Chart(alt.Data(values=plain(_top)))
        .mark_bar(color="#54a24b")
        .encode(
            x=alt.X("gmv:Q", title="GMV (BRL)"),
            y=alt.Y("product_category:N", sort="-x", title="product category"),
            tooltip=["product_category:N", alt.Tooltip("gmv:Q", format=",.2f"), alt.Tooltip("items:Q", format=",")],
        )
        .properties(width="container", height=max(120, 18 * len(_top)))
    )
    revenue_by_category = mo.vstack(
        [
            mo.md("## Revenue by category"),
            mo.Html(
                dashboard.html_text(
                    "<p>Which categories sell? GMV by product category, {where}{top}.</p>",
                    where=where,
                    top=f"; the top 15 of {len(_rows)}" if len(_rows) > 15 else "",
                )
            ),
            _chart if _top else mo.md("_No sales in the period._"),
        ]
    )
    return (revenue_by_category,)


@app.cell
def _(mo, revenue_by_category, revenue_by_state):
    mo.hstack([revenue_by_state, revenue_by_category], widths="equal", gap=2)
    return


@app.cell
def _(alt, chosen_state, dashboard, figures, mo, period, plain, read, state_highlight, where):
    # Delivery punctuality and delays by customer state (mart_delivery_performance): ratios of the period's sums.
    _by_state = read(figures.delivery_by_state, period.bounds)
    _on_time, _delivered = figures.on_time(_by_state, chosen_state)
    _rows = plain(_by_state)
    _one_month = period.months == 1
    _height = max(120, 18 * len(_rows))
    _rate_chart = (
        alt.Chart(alt.Data(values=_rows))
        .mark_bar()
        .encode(
            x=alt.X("on_time_rate:Q", title="on-time rate", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("customer_state:N", sort="-x", title="customer state"),
            color=state_highlight,
            tooltip=[
                "customer_state:N",
                alt.Tooltip("on_time_rate:Q", format=".1%"),
                alt.Tooltip("delivered:Q", format=","),
            ],
        )
        .properties(width="container", height=_height)
    )
    _base = alt.Chart(alt.Data(values=_rows)).encode(y=alt.Y("customer_state:N", title="customer state"))
    _marks = [
        _base.mark_point(filled=True, size=60).encode(x=alt.X("mean_days:Q", title="days"), color=state_highlight),
        _base.mark_point(shape="diamond", size=60, color="#f58518").encode(x="after_estimate:Q"),
    ]
    _tooltip = [
        "customer_state:N",
        alt.Tooltip("mean_days:Q", format=".1f", title="mean delivery days"),
        alt.Tooltip("after_estimate:Q", format=".1f", title="mean days after estimate"),
    ]
    if _one_month:
        _marks = [
            _base.mark_rule(color="#999").encode(x="mean_days:Q", x2=alt.X2("p90_days")),
            *_marks,
            _base.mark_tick(thickness=2, color="#333").encode(x="p90_days:Q"),
        ]
        _tooltip.append(alt.Tooltip("p90_days:Q", format=".1f", title="p90 delivery days"))
    _delay_chart = alt.layer(*_marks).encode(tooltip=_tooltip).properties(width="container", height=_height)
    _summary = (
        dashboard.html_text(
            "On time: <b data-kpi='on-time'>{rate:.1%}</b> of {delivered:,} delivered orders, {where}.",
            rate=_on_time / _delivered,
            delivered=_delivered,
            where=where,
        )
        if _delivered
        else dashboard.html_text("No delivered orders in the period, {where}.", where=where)
    )
    _legend = (
        "dot = mean delivery days, tick = 90th percentile, orange diamond = mean days after the estimate"
        " (negative = early)."
        if _one_month
        else "dot = mean delivery days, orange diamond = mean days after the estimate (negative = early). The 90th"
        " percentile is shown for a single month: percentiles of months do not add up to the period's."
    )
    mo.vstack(
        [
            mo.md("## Delivery"),
            mo.Html(
                "<p>Do we deliver on time? "
                + _summary
                + " Orders count in the month they were placed; the rates and means are over every delivered order"
                " of the period. Right chart: " + _legend + "</p>"
            ),
            mo.hstack([_rate_chart, _delay_chart], widths="equal", gap=2)
            if _rows
            else mo.md("_No delivered orders in the period._"),
        ]
    )
    return


@app.cell
def _(alt, dashboard, figures, mo, period, plain, read, where):
    # Customer segments, from mart_customer_analytics: one row per person, scored over all history.
    _rows = read(figures.customer_segments)
    _chart = (
        alt.Chart(alt.Data(values=plain(_rows)))
        .mark_bar()
        .encode(
            x=alt.X("customers:Q", title="customers"),
            y=alt.Y("segment:N", sort="-x", title="RFM segment"),
            color=alt.Color("spent:Q", title="total spent (BRL)", scale=alt.Scale(scheme="blues")),
            tooltip=[
                "segment:N",
                alt.Tooltip("customers:Q", format=","),
                alt.Tooltip("spent:Q", format=",.2f", title="total spent (BRL)"),
                alt.Tooltip("orders_per_customer:Q", format=".2f"),
            ],
        )
        .properties(width="container", height=max(120, 28 * len(_rows)))
    )
    mo.vstack(
        [
            mo.md("## Customer segments"),
            mo.Html(
                dashboard.html_text(
                    "<p>Who are our customers? People by RFM segment, coloured by what they spent."
                    " mart_customer_analytics has no state and no period: it scores every person over all history"
                    " (recency from the newest purchase in the data), so the filters ({period}, {where}) do not"
                    " apply here.</p>",
                    period=period.label,
                    where=where,
                )
            ),
            _chart if _rows else mo.md("_No customers with a billable order yet._"),
        ]
    )
    return


@app.cell
def _(mo):
    min_items = mo.ui.slider(1, 20, value=3, label="minimum items sold", show_value=True)
    return (min_items,)


@app.cell
def _(alt, chosen_state, dashboard, figures, min_items, mo, plain, read):
    # The sellers shipping late most often, from mart_seller_performance (lifetime figures, by seller state).
    _rows = plain(read(figures.late_sellers, min_items.value, chosen_state))
    for _row in _rows:
        _row["seller"] = f"{_row['seller_id'][:8]}… ({_row['seller_state']})"
    _chart = (
        alt.Chart(alt.Data(values=_rows))
        .mark_bar(color="#e45756")
        .encode(
            x=alt.X("late_shipment_rate:Q", title="late-shipment rate", axis=alt.Axis(format="%")),
            y=alt.Y("seller:N", sort="-x", title="seller"),
            tooltip=[
                "seller_id:N",
                "seller_state:N",
                alt.Tooltip("late_shipment_rate:Q", format=".1%"),
                alt.Tooltip("item_count:Q", format=","),
                alt.Tooltip("revenue:Q", format=",.2f"),
                alt.Tooltip("mean_review_score:Q", format=".2f"),
            ],
        )
        .properties(width="container", height=max(120, 24 * len(_rows)))
    )
    mo.vstack(
        [
            mo.md("## Sellers shipping late"),
            mo.Html(
                dashboard.html_text(
                    "<p>Which sellers hand items to the carrier after the shipping limit? The ten worst late-shipment"
                    " rates among sellers with at least the chosen number of items sold.{state} mart_seller_performance"
                    " has no period: these are lifetime figures, whatever the period.</p>",
                    state=f" The state filter selects the seller's state ({chosen_state})." if chosen_state else "",
                )
            ),
            min_items,
            _chart if _rows else mo.md("_No seller with that many items shipped._"),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
