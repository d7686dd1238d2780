"""Street-front shops (沿街商户): the chiefs' weekly visits to check their frontage pledge."""
