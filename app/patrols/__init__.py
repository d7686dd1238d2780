"""Patrols (巡查): a road chief's walk recorded by the phone, cleaned and measured."""
