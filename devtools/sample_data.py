"""Generated stand-in data for two department systems (a fixed seed: the same records every run).

* market supervision's company registry: unified social credit code, name, legal representative,
  registered capital (an exact decimal string), registration date, business scope, status;
* public security's resident registry: 18-digit resident id number (with its GB 11643 check
  digit), name, birth date, address, household.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

COMPANY_FIELDS = ("company_id", "name", "legal_representative", "registered_capital", "registration_date", "business_scope", "status")
RESIDENT_FIELDS = ("id_number", "name", "birth_date", "address", "household")

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红建华文辉力晨宇轩浩然子涵欣怡梓萱思远"
_CITIES = [("北京市", "110101"), ("上海市", "310101"), ("广州市", "440103"), ("深圳市", "440304"), ("杭州市", "330102"), ("成都市", "510104"), ("武汉市", "420102"), ("南京市", "320102")]
_STREETS = "人民路 中山路 解放路 建设路 和平路 长江路 黄河路 新华路 文化路 光明路".split()
_TRADES = ["软件开发", "技术服务", "货物进出口", "餐饮服务", "建筑工程", "医疗器械销售", "农产品批发", "物流运输", "文化传媒", "新能源技术"]
_SUFFIX = ["科技有限公司", "贸易有限公司", "实业有限公司", "信息技术有限公司", "餐饮管理有限公司", "建设工程有限公司"]
_STATUS = ["存续", "存续", "存续", "存续", "在业", "吊销", "注销"]
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def resident_check_digit(first17: str) -> str:
    """GB 11643-1999 check character of an 18-digit resident identity number."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS)) % 11]


def _uscc(rng: random.Random, region: str) -> str:
    body = "91" + region + "".join(rng.choice(_USCC_CHARS) for _ in range(9))
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body, _USCC_WEIGHTS))
    return body + _USCC_CHARS[(31 - total % 31) % 31]


def _person(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def companies(count: int = 3000, seed: int = 20261123) -> list[dict[str, Any]]:
    """The company registry of market supervision, ``count`` records."""
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        city, region = rng.choice(_CITIES)
        day = dt.date(1995, 1, 1) + dt.timedelta(days=rng.randrange(11_000))
        records.append({
            "company_id": _uscc(rng, region),
            "name": f"{city[:-1]}{rng.choice(_GIVEN)}{rng.choice(_GIVEN)}{rng.choice(_SUFFIX)}",
            "legal_representative": _person(rng),
            "registered_capital": f"{rng.randrange(10, 100_000) * 1000}.00",
            "registration_date": day.isoformat(),
            "business_scope": "、".join(rng.sample(_TRADES, 3)),
            "status": rng.choice(_STATUS),
        })
    return records


def residents(count: int = 3000, seed: int = 11643) -> list[dict[str, Any]]:
    """The resident registry of public security, ``count`` records."""
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        city, region = rng.choice(_CITIES)
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(26_000))
        first17 = f"{region}{birth:%Y%m%d}{rng.randrange(1000):03d}"
        records.append({
            "id_number": first17 + resident_check_digit(first17),
            "name": _person(rng),
            "birth_date": birth.isoformat(),
            "address": f"{city}{rng.choice(_STREETS)}{rng.randrange(1, 999)}号",
            "household": f"{city}户籍{rng.randrange(10**6):06d}",
        })
    return records
