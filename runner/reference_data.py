"""What the synthetic extract is drawn from: the real export's cities, categories, statuses, rates and messages.

Brazil's larger cities with their zip-prefix ranges and centres, Olist's product categories with the names of its
translation file, and the shares the real data shows (order statuses, items per order, payment types and
installments, review rates and scores, review titles and messages). runner/generate.py draws every row from these.
"""

from __future__ import annotations

from itertools import accumulate
from typing import NamedTuple


class Location(NamedTuple):
    """A city: its name and state, its zip-prefix range, its centre and its share of the customers."""

    city: str
    state: str
    zip_low: int
    zip_high: int
    lat: float
    lng: float
    weight: float


# Real cities with their zip-prefix ranges and centres; weights follow the real customer spread (SP largest).
LOCATIONS: tuple[Location, ...] = (
    Location("sao paulo", "SP", 1000, 5999, -23.55, -46.63, 15.6),
    Location("rio de janeiro", "RJ", 20000, 23799, -22.91, -43.17, 6.9),
    Location("belo horizonte", "MG", 30000, 31999, -19.92, -43.94, 2.8),
    Location("brasilia", "DF", 70000, 72799, -15.79, -47.88, 2.1),
    Location("curitiba", "PR", 80000, 82999, -25.43, -49.27, 1.5),
    Location("campinas", "SP", 13000, 13139, -22.91, -47.06, 1.5),
    Location("porto alegre", "RS", 90000, 91999, -30.03, -51.23, 1.4),
    Location("salvador", "BA", 40000, 42499, -12.97, -38.50, 1.2),
    Location("guarulhos", "SP", 7000, 7399, -23.46, -46.53, 1.2),
    Location("sao bernardo do campo", "SP", 9600, 9899, -23.69, -46.56, 0.9),
    Location("niteroi", "RJ", 24000, 24399, -22.88, -43.10, 0.85),
    Location("santo andre", "SP", 9000, 9299, -23.66, -46.53, 0.8),
    Location("osasco", "SP", 6000, 6299, -23.53, -46.79, 0.75),
    Location("santos", "SP", 11000, 11099, -23.96, -46.33, 0.72),
    Location("goiania", "GO", 74000, 74899, -16.68, -49.25, 0.7),
    Location("sao jose dos campos", "SP", 12200, 12249, -23.18, -45.88, 0.7),
    Location("fortaleza", "CE", 60000, 61599, -3.73, -38.52, 0.66),
    Location("sorocaba", "SP", 18000, 18109, -23.50, -47.46, 0.63),
    Location("recife", "PE", 50000, 52999, -8.05, -34.88, 0.6),
    Location("florianopolis", "SC", 88000, 88099, -27.59, -48.55, 0.57),
    Location("jundiai", "SP", 13200, 13219, -23.19, -46.88, 0.57),
    Location("ribeirao preto", "SP", 14000, 14114, -21.18, -47.81, 0.5),
    Location("belem", "PA", 66000, 66999, -1.46, -48.49, 0.45),
    Location("vitoria", "ES", 29000, 29099, -20.32, -40.34, 0.45),
    Location("juiz de fora", "MG", 36000, 36099, -21.76, -43.35, 0.4),
    Location("londrina", "PR", 86000, 86099, -23.31, -51.16, 0.4),
    Location("manaus", "AM", 69000, 69099, -3.12, -60.02, 0.35),
    Location("natal", "RN", 59000, 59139, -5.79, -35.21, 0.3),
    Location("campo grande", "MS", 79000, 79129, -20.47, -54.62, 0.3),
    Location("cuiaba", "MT", 78000, 78109, -15.60, -56.10, 0.3),
    Location("sao luis", "MA", 65000, 65109, -2.53, -44.30, 0.25),
    Location("maceio", "AL", 57000, 57099, -9.67, -35.74, 0.25),
    Location("joao pessoa", "PB", 58000, 58099, -7.12, -34.86, 0.25),
    Location("teresina", "PI", 64000, 64099, -5.09, -42.80, 0.2),
    Location("aracaju", "SE", 49000, 49099, -10.91, -37.07, 0.2),
    Location("porto velho", "RO", 76800, 76834, -8.76, -63.90, 0.1),
    Location("palmas", "TO", 77000, 77270, -10.18, -48.33, 0.1),
    Location("macapa", "AP", 68900, 68914, 0.03, -51.07, 0.05),
    Location("boa vista", "RR", 69300, 69339, 2.82, -60.67, 0.05),
    Location("rio branco", "AC", 69900, 69923, -9.97, -67.81, 0.05),
)
LOCATION_CUM = tuple(accumulate(location.weight for location in LOCATIONS))
SAO_PAULO = LOCATIONS[0]  # its zip prefixes all start with 0, which the zip defect needs
SAO_PAULO_SPELLINGS = ("são paulo", "sao paulo / sao paulo", "SAO PAULO")
GEO_JITTER = 0.08  # degrees; keeps every point inside Brazil's lat/lng box

# Real Olist categories, most frequent first, with the English names of the translation file.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("cama_mesa_banho", "bed_bath_table"),
    ("beleza_saude", "health_beauty"),
    ("esporte_lazer", "sports_leisure"),
    ("moveis_decoracao", "furniture_decor"),
    ("informatica_acessorios", "computers_accessories"),
    ("utilidades_domesticas", "housewares"),
    ("relogios_presentes", "watches_gifts"),
    ("telefonia", "telephony"),
    ("ferramentas_jardim", "garden_tools"),
    ("automotivo", "auto"),
    ("brinquedos", "toys"),
    ("cool_stuff", "cool_stuff"),
    ("perfumaria", "perfumery"),
    ("bebes", "baby"),
    ("eletronicos", "electronics"),
    ("papelaria", "stationery"),
    ("fashion_bolsas_e_acessorios", "fashion_bags_accessories"),
    ("pet_shop", "pet_shop"),
    ("moveis_escritorio", "office_furniture"),
    ("consoles_games", "consoles_games"),
    ("malas_acessorios", "luggage_accessories"),
    ("construcao_ferramentas_construcao", "construction_tools_construction"),
    ("eletrodomesticos", "home_appliances"),
    ("instrumentos_musicais", "musical_instruments"),
    ("eletroportateis", "small_appliances"),
    ("livros_interesse_geral", "books_general_interest"),
    ("alimentos", "food"),
    ("casa_construcao", "home_construction"),
)
# Used by real products but missing from the real translation file.
UNTRANSLATED_CATEGORIES = ("pc_gamer", "portateis_cozinha_e_preparadores_de_alimentos")

STATUS_WEIGHTS = {
    "delivered": 96.5,
    "shipped": 1.1,
    "canceled": 0.6,
    "unavailable": 0.6,
    "invoiced": 0.3,
    "processing": 0.3,
    "created": 0.05,
    "approved": 0.05,
}
STATUSES = tuple(STATUS_WEIGHTS)
STATUS_CUM = tuple(accumulate(STATUS_WEIGHTS.values()))
# How far along purchase -> approved -> carrier -> customer each status got; None: stopped after purchase or approval.
STAGES_REACHED: dict[str, int | None] = {
    "created": 0,
    "approved": 1,
    "invoiced": 1,
    "processing": 1,
    "shipped": 2,
    "delivered": 3,
    "canceled": None,
    "unavailable": None,
}
LATE_RATE = 0.08
RETURNING_RATE = 0.05

ITEM_COUNTS = (1, 2, 3)
ITEM_COUNT_CUM = (88, 97, 100)
REPEAT_ITEM_RATE = 0.5  # multi-item orders often hold several units of the same product, as in the real data

PAYMENT_TYPES = ("credit_card", "boleto", "voucher", "debit_card")
PAYMENT_CUM = tuple(accumulate((75, 19.5, 4, 1.5)))
INSTALLMENTS = tuple(range(1, 11))
INSTALLMENT_CUM = tuple(accumulate((50, 12, 11, 7, 5, 4, 3, 3, 2, 3)))
SPLIT_PAYMENT_RATE = 0.03

REVIEW_RATE_DELIVERED = 0.99
REVIEW_RATE_OTHER = 0.6
SCORES = (5, 4, 3, 2, 1)
HAPPY_SCORE_CUM = tuple(accumulate((60, 20, 8, 3, 9)))
UNHAPPY_SCORE_CUM = tuple(accumulate((20, 10, 12, 10, 48)))
TITLE_RATE = 0.12
MESSAGE_RATE = 0.4
TITLES = ("recomendo", "Ótimo", "Muito bom", "Excelente", "Super recomendo", "Bom", "Não recebi", "nota 10")
MESSAGES = (
    "Produto entregue no prazo.",
    "Muito bom, recomendo.",
    "Chegou antes do prazo",
    "Gostei muito do produto",
    "Ainda não recebi o produto",
    "Produto diferente do anunciado",
    "Tudo certo",
    "Excelente qualidade e entrega rápida",
    "Veio com defeito",
    "Produto bom.\nEntrega no prazo.",  # real messages span lines even in the clean data
)
MESSY_MESSAGES = (
    'Ótimo, chegou "rápido"\nrecomendo ção',
    'Péssimo, o "frete" atrasou\r\nnão recomendo',
    'Comprei 2, veio 1 só "incompleto"\n\natendimento não responde',
)
