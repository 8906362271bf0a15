/*
 * nosym_plugin.c: a shared object that is not a model plugin (no mb_model_plugin symbol).
 */
int mb_not_a_plugin(void);

int
mb_not_a_plugin(void)
{
	return 42;
}
