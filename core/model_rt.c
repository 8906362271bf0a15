/*
 * model_rt.c: a model as the service runs it (mb_model_rt.h): whether any device can take
 * its requests.
 *
 * Reads only the model's mask and its breakers' lock-free state, so any thread may ask (the
 * ingest threads do, per request). The item cost is inline in the header.
 */
#include "mb_model_rt.h"

#include "mb_breaker.h"

bool
mb_model_unavailable(const struct mb_model *model)
{
	if (model->breakers == NULL || model->devices == 0)
		return false;
	for (int i = 0; i < MB_DEVICES_MAX; i++)
		if ((model->devices & MB_DEVICE_BIT(i)) &&
		    !mb_breaker_rejecting(&model->breakers[i]))
			return false;
	return true;
}
